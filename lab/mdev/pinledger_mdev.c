// SPDX-License-Identifier: GPL-2.0-only
/*
 * pinledger_mdev: the lab's test mediated device. Its vendor driver pins
 * and unpins guest pages on request through vfio_pin_pages and
 * vfio_unpin_pages, as a trace's `pin` and `unpin` events say, and honours
 * the unmap notification (dma_unmap) by unpinning every page it holds in
 * the range. Closing the device releases nothing: pins a trace's driver
 * kept past its close stay pinned, as they would.
 *
 * Device fd ioctls: PINLEDGER_PIN and PINLEDGER_UNPIN with
 * struct pinledger_pin; PIN returns what vfio_pin_pages returned,
 * UNPIN returns npage.
 */
#include <linux/module.h>
#include <linux/device.h>
#include <linux/slab.h>
#include <linux/xarray.h>
#include <linux/vfio.h>
#include <linux/mdev.h>
#include <linux/version.h>

#define PINLEDGER_NAME "pinledger"

struct pinledger_pin {
	__u64 iova;
	__u32 npage;
	__u32 prot;
};

#define PINLEDGER_PIN _IOW('P', 1, struct pinledger_pin)
#define PINLEDGER_UNPIN _IOW('P', 2, struct pinledger_pin)

struct pl_state {
	struct vfio_device vdev;
	struct mutex lock;
	/* Pins held, by iova page number: the count of pins of that page. */
	struct xarray pins;
};

static struct pl_dev {
	struct device dev;
	struct mdev_parent parent;
} pl_dev;

static struct class *pl_class;

static int pl_init_dev(struct vfio_device *vdev)
{
	struct pl_state *s = container_of(vdev, struct pl_state, vdev);

	mutex_init(&s->lock);
	xa_init(&s->pins);
	return 0;
}

static void pl_release_dev(struct vfio_device *vdev)
{
	struct pl_state *s = container_of(vdev, struct pl_state, vdev);

	xa_destroy(&s->pins);
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 2, 0)
	vfio_free_device(vdev);
#endif
}

static void pl_hold(struct pl_state *s, u64 iova, int npage, int delta)
{
	int i;

	for (i = 0; i < npage; i++) {
		unsigned long idx = (iova >> PAGE_SHIFT) + i;
		unsigned long n = xa_to_value(xa_load(&s->pins, idx) ?: xa_mk_value(0));

		if (delta < 0 && n == 0)
			continue;
		n += delta;
		if (n)
			xa_store(&s->pins, idx, xa_mk_value(n), GFP_KERNEL);
		else
			xa_erase(&s->pins, idx);
	}
}

static long pl_pin(struct pl_state *s, struct pinledger_pin *p)
{
	struct page **pages;
	int ret;

	if (p->npage == 0 || p->npage > 4096)
		return -EINVAL;
	pages = kcalloc(p->npage, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	ret = vfio_pin_pages(&s->vdev, p->iova, p->npage, p->prot, pages);
	kfree(pages);
	if (ret > 0) {
		mutex_lock(&s->lock);
		pl_hold(s, p->iova, ret, 1);
		mutex_unlock(&s->lock);
	}
	return ret;
}

static long pl_ioctl(struct vfio_device *vdev, unsigned int cmd, unsigned long arg)
{
	struct pl_state *s = container_of(vdev, struct pl_state, vdev);
	struct pinledger_pin p;

	if (cmd != PINLEDGER_PIN && cmd != PINLEDGER_UNPIN)
		return -ENOTTY;
	if (copy_from_user(&p, (void __user *)arg, sizeof(p)))
		return -EFAULT;
	if (cmd == PINLEDGER_PIN)
		return pl_pin(s, &p);
	vfio_unpin_pages(vdev, p.iova, p.npage);
	mutex_lock(&s->lock);
	pl_hold(s, p.iova, p.npage, -1);
	mutex_unlock(&s->lock);
	return p.npage;
}

/* The unmap notification: unpin every page held in the range, as often as it was pinned. */
static void pl_dma_unmap(struct vfio_device *vdev, u64 iova, u64 length)
{
	struct pl_state *s = container_of(vdev, struct pl_state, vdev);
	unsigned long first = iova >> PAGE_SHIFT, last = (iova + length - 1) >> PAGE_SHIFT;
	unsigned long idx;
	void *entry;

	mutex_lock(&s->lock);
	xa_for_each_range(&s->pins, idx, entry, first, last) {
		unsigned long n = xa_to_value(entry);

		while (n--)
			vfio_unpin_pages(vdev, (dma_addr_t)idx << PAGE_SHIFT, 1);
		xa_erase(&s->pins, idx);
	}
	mutex_unlock(&s->lock);
}

static const struct vfio_device_ops pl_ops = {
	.name = "pinledger-mdev",
	.init = pl_init_dev,
	.release = pl_release_dev,
	.ioctl = pl_ioctl,
	.dma_unmap = pl_dma_unmap,
};

static int pl_probe(struct mdev_device *mdev)
{
	struct pl_state *s;
	int ret;

	s = vfio_alloc_device(pl_state, vdev, &mdev->dev, &pl_ops);
	if (IS_ERR(s))
		return PTR_ERR(s);
	ret = vfio_register_emulated_iommu_dev(&s->vdev);
	if (ret) {
		vfio_put_device(&s->vdev);
		return ret;
	}
	dev_set_drvdata(&mdev->dev, s);
	return 0;
}

static void pl_remove(struct mdev_device *mdev)
{
	struct pl_state *s = dev_get_drvdata(&mdev->dev);

	vfio_unregister_group_dev(&s->vdev);
	vfio_put_device(&s->vdev);
}

static struct mdev_type pl_type = {
	.sysfs_name = "1",
	.pretty_name = "pinledger test mdev",
};

static struct mdev_type *pl_types[] = { &pl_type };

static struct mdev_driver pl_driver = {
	.device_api = "vfio-pinledger",
	.max_instances = 64,
	.driver = {
		.name = "pinledger_mdev",
		.owner = THIS_MODULE,
		.mod_name = KBUILD_MODNAME,
	},
	.probe = pl_probe,
	.remove = pl_remove,
};

static void pl_dev_release(struct device *dev)
{
}

static int __init pl_module_init(void)
{
	int ret;

	ret = mdev_register_driver(&pl_driver);
	if (ret)
		return ret;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
	pl_class = class_create(PINLEDGER_NAME);
#else
	pl_class = class_create(THIS_MODULE, PINLEDGER_NAME);
#endif
	if (IS_ERR(pl_class)) {
		ret = PTR_ERR(pl_class);
		goto err_driver;
	}
	pl_dev.dev.class = pl_class;
	pl_dev.dev.release = pl_dev_release;
	dev_set_name(&pl_dev.dev, "%s", PINLEDGER_NAME);
	ret = device_register(&pl_dev.dev);
	if (ret)
		goto err_class;
	ret = mdev_register_parent(&pl_dev.parent, &pl_dev.dev, &pl_driver, pl_types, ARRAY_SIZE(pl_types));
	if (ret)
		goto err_device;
	return 0;
err_device:
	device_unregister(&pl_dev.dev);
err_class:
	class_destroy(pl_class);
err_driver:
	mdev_unregister_driver(&pl_driver);
	return ret;
}

static void __exit pl_module_exit(void)
{
	mdev_unregister_parent(&pl_dev.parent);
	device_unregister(&pl_dev.dev);
	class_destroy(pl_class);
	mdev_unregister_driver(&pl_driver);
}

module_init(pl_module_init);
module_exit(pl_module_exit);
MODULE_LICENSE("GPL v2");
MODULE_DESCRIPTION("pinledger lab: a mediated device whose driver pins pages on request");

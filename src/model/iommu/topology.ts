/**
 * The host's IOMMU units and groups from the trace header; a group the
 * header does not list is a physical group behind the default x86_64 unit.
 */
import type { GroupSpec, IommuUnitSpec } from '../events.js';

export const IOMMU_READ = 1;
export const IOMMU_WRITE = 2;
export const IOMMU_CACHE = 4;

export class Topology {
  private units = new Map<string, IommuUnitSpec>();
  private groups = new Map<number, GroupSpec>();
  private devices = new Map<string, number>();

  constructor(
    iommus: IommuUnitSpec[],
    groups: GroupSpec[],
    private readonly defaultUnit: IommuUnitSpec,
  ) {
    for (const u of iommus) this.units.set(u.id, u);
    if (!this.units.has(defaultUnit.id)) this.units.set(defaultUnit.id, defaultUnit);
    for (const g of groups) {
      this.groups.set(g.id, g);
      for (const d of g.devices) this.devices.set(d, g.id);
    }
  }

  group(id: number): GroupSpec {
    let g = this.groups.get(id);
    if (!g) {
      g = { kind: 'iommu', id, iommu: this.defaultUnit.id, devices: [] };
      this.groups.set(id, g);
    }
    return g;
  }

  unit(id: string): IommuUnitSpec {
    return this.units.get(id) ?? this.defaultUnit;
  }

  groupOfDevice(dev: string): number | undefined {
    return this.devices.get(dev);
  }

  specs(): { iommus: IommuUnitSpec[]; groups: GroupSpec[] } {
    return { iommus: [...this.units.values()], groups: [...this.groups.values()] };
  }
}

/**
 * Every class whose instances make up a replay's state, and the objects
 * with behaviour that are saved by name. A class missing here makes saving
 * fail loudly (tested), never silently. Built on first use, so that model
 * classes may clone their own state (the replayer's what-if fork) without
 * an import cycle evaluating this list before the classes exist.
 */
import { iommufdCompatDriver, IommufdCompat, IOMMUFD_CHARGING } from '../backends/iommufd-compat/index.js';
import { MediatedDomain } from '../backends/rfc-v5/mediated-domain.js';
import { RfcV5Type1, rfcV5Driver } from '../backends/rfc-v5/index.js';
import { UpstreamType1, upstreamDriver } from '../backends/upstream/index.js';
import { ModelEnv } from '../env.js';
import { PageTable } from '../iommu/page-table.js';
import { Topology } from '../iommu/topology.js';
import { AddressSpace } from '../memory/address-space.js';
import { FrameLedger } from '../memory/frame-ledger.js';
import { Process } from '../memory/process.js';
import { DifferentialReplay } from '../replay/differential.js';
import { CollectingSink, Replayer } from '../replay/replayer.js';
import { DmaList } from '../type1/dma-list.js';
import { VpfnList } from '../type1/vpfn-list.js';
import { Domain } from '../type1/domain.js';
import { TYPE1_CHARGING, VfioIommu } from '../type1/vfio-iommu.js';
import { Container, GroupState, VfioCore } from '../vfio/core.js';
import { GraphRegistry } from './graph-codec.js';
import { UNSPECIFIED_KERNEL } from '../kernel/choose.js';
import { LINUX_6_1 } from '../kernel/linux-6.1.js';
import { LINUX_6_12 } from '../kernel/linux-6.12.js';

let registry: GraphRegistry | undefined;

export function modelRegistry(): GraphRegistry {
  return (registry ??= buildRegistry());
}

function buildRegistry(): GraphRegistry {
  return new GraphRegistry()
  .cls('DifferentialReplay', DifferentialReplay)
  .cls('Replayer', Replayer)
  .cls('CollectingSink', CollectingSink)
  .cls('ModelEnv', ModelEnv)
  .cls('Topology', Topology)
  .cls('Process', Process)
  .cls('AddressSpace', AddressSpace)
  .custom('FrameLedger', FrameLedger, { save: (l) => l.save(), load: FrameLedger.load })
  .cls('VfioCore', VfioCore)
  .cls('Container', Container)
  .cls('GroupState', GroupState)
  .cls('VfioIommu', VfioIommu)
  .custom('DmaList', DmaList, { save: (l) => l.all(), load: DmaList.load })
  .cls('VpfnList', VpfnList)
  .cls('Domain', Domain)
  .custom('PageTable', PageTable, { save: (pt) => pt.save(), load: PageTable.load })
  .cls('UpstreamType1', UpstreamType1)
  .cls('RfcV5Type1', RfcV5Type1)
  .cls('MediatedDomain', MediatedDomain)
  .cls('IommufdCompat', IommufdCompat)
  .external('driver:upstream', upstreamDriver)
  .external('driver:rfc-v5', rfcV5Driver)
  .external('driver:iommufd-compat', iommufdCompatDriver)
  .external('policy:type1', TYPE1_CHARGING)
  .external('policy:iommufd', IOMMUFD_CHARGING)
  .external('kernel:linux-6.1', LINUX_6_1)
  .external('kernel:linux-6.12', LINUX_6_12)
  .external('kernel:unspecified', UNSPECIFIED_KERNEL);
}

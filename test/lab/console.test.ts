import { describe, expect, it } from 'vitest';
import { LabError, parseGuestConsole } from '../../src/lab/guest.js';

describe('parseGuestConsole', () => {
  it("reads the helper's first line when the firmware's output shares it, up to a bare \\r (seen in a full run)", () => {
    // Exactly what a full run printed: SeaBIOS's last words, escape codes, \r, then the first DEV line.
    const text =
      'Booting from ROM..\u001bc\u001b[?7l\u001b[2J\u001b[0m.\rDEV 0 0000:00:02.0 2\r\nDEV 1 0000:00:03.0 3\r\nMDEV 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 5\r\n' +
      'KERNEL 6.1.0-57-amd64\r\nT 0\r\nR 1 0 3\r\nLAB-DONE\r\n';
    const run = parseGuestConsole(text, 1, 2, 1.5);
    expect(run.devices).toEqual([
      { index: 0, name: '0000:00:02.0', group: 2 },
      { index: 1, name: '0000:00:03.0', group: 3 },
    ]);
    expect(run.mdevs).toEqual([{ uuid: '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001', group: 5 }]);
    expect(run.kernel).toBe('6.1.0-57-amd64');
    expect(run.outputs).toEqual([['R 1 0 3']]);
  });

  it('refuses a console that reports fewer devices than the guest was given, showing its DEV lines', () => {
    const err = (() => {
      try {
        parseGuestConsole('DEV 0 0000:00:02.0 2\nLAB-DONE\n', 1, 2, 1);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(LabError);
    expect((err as Error).message.split('\n')[0]).toBe('the guest reported 1 of 2 devices; its DEV lines: ["DEV 0 0000:00:02.0 2"]');
  });
});

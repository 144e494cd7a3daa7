/**
 * A stand-in for a CNI agent, for the demo and the tests: loads one tc
 * program of an object file, sets its .rodata, attaches it with a tcx link on
 * a device of the namespace it runs in, says `attached <prog id>` on stdout,
 * and holds the link until it is killed (the link goes with the process).
 *
 *   ip netns exec NS node dist/src/lab/tcx-attach.js OBJ PROGRAM IFNAME ingress|egress [RODATA_HEX|-] [first]
 */
import { attachTcx } from '../bpf/link.js';
import { interfaces } from '../bpf/native/libc.js';
import { BpfObject } from '../bpf/object.js';
import { progIdOfFd } from '../bpf/loaded.js';

const [file, programName, ifname, direction, rodata, position] = process.argv.slice(2);
if (!file || !programName || !ifname || (direction !== 'ingress' && direction !== 'egress')) {
  process.stderr.write('usage: tcx-attach OBJ PROGRAM IFNAME ingress|egress [RODATA_HEX|-] [first]\n');
  process.exit(2);
}
const iface = interfaces().find((i) => i.name === ifname);
if (!iface) {
  process.stderr.write(`tcx-attach: no device ${ifname}\n`);
  process.exit(1);
}
const object = BpfObject.open(file, programName);
const program = object.program(programName);
if (rodata && rodata !== '-') object.rodata().setInitialValue(Buffer.from(rodata, 'hex'));
object.load();
const link = attachTcx(program, iface.ifindex, direction, `${programName} on ${ifname} ${direction}`, position === 'first' ? 'first' : 'last');
process.stdout.write(`attached ${progIdOfFd(program.fd)}\n`);
const stop = () => {
  link.close();
  object.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setInterval(() => {}, 1 << 30);

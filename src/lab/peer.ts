/**
 * Tiny traffic peers run inside lab namespaces:
 *   node peer.js tcp-serve PORT            accept one connection, echo it, exit
 *   node peer.js tcp-connect HOST PORT MSG connect, send MSG, wait for the echo
 *   node peer.js udp-serve PORT [6]        print the first datagram (IPv6 with 6), exit
 *   node peer.js udp-send HOST PORT MSG    send one datagram
 * They print "ready" once listening, so callers know when to send.
 */
import dgram from 'node:dgram';
import net from 'node:net';

const [mode, a1, a2, a3] = process.argv.slice(2);
const bail = (msg: string) => {
  process.stderr.write(`peer: ${msg}\n`);
  process.exit(1);
};
setTimeout(() => bail('timed out'), 15_000).unref();

switch (mode) {
  case 'tcp-serve': {
    const server = net.createServer((sock) => {
      sock.on('data', (d) => sock.end(d));
      sock.on('close', () => server.close());
    });
    server.listen(Number(a1), () => process.stdout.write('ready\n'));
    break;
  }
  case 'tcp-connect': {
    const sock = net.connect(Number(a2), a1!, () => sock.write(a3 ?? 'hello'));
    sock.on('data', () => sock.end());
    sock.on('close', () => process.exit(0));
    sock.on('error', (e) => bail(e.message));
    break;
  }
  case 'udp-serve': {
    const v6 = a2 === '6';
    const s = dgram.createSocket(v6 ? 'udp6' : 'udp4');
    s.on('message', (m) => {
      process.stdout.write(`${m.toString()}\n`);
      s.close();
    });
    s.bind(Number(a1), v6 ? '::' : '0.0.0.0', () => process.stdout.write('ready\n'));
    break;
  }
  case 'udp-send': {
    const s = dgram.createSocket(a1!.includes(':') ? 'udp6' : 'udp4');
    s.send(a3 ?? 'hello', Number(a2), a1!, (err) => {
      if (err) bail(err.message);
      s.close();
    });
    break;
  }
  default:
    bail(`unknown mode ${mode}`);
}

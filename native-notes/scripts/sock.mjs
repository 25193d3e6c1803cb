// For epoll.sh: one TCP exchange on loopback, traced with strace -f. The client sends a marker string so
// the server's read of it can be found in the trace. Prints the main thread id (= process.pid) to stderr.
import { createServer, connect } from 'node:net';

process.stderr.write(`main-tid ${process.pid}\n`);
const server = createServer((sock) => {
  sock.once('data', (d) => {
    process.stderr.write(`== server got ${d.length} bytes ==\n`);
    sock.end('bye');
    server.close();
  });
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const c = connect(port, '127.0.0.1', () => {
    // Wait a little so the server's loop is idle in epoll_pwait when the bytes arrive.
    setTimeout(() => c.write('wirelab-socket-marker'), 50);
  });
  c.on('data', () => c.end());
});

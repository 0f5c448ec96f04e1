/**
 * Migration transports: where a migration stream goes and where it comes from, named by URIs as
 * QEMU spells them.
 *
 * <table>
 *   <caption>Transports</caption>
 *   <tr><th>URI</th><th>outgoing ({@link dev.ferry.transport.Transports#connect})</th>
 *       <th>incoming ({@link dev.ferry.transport.Transports#listen})</th><th>return path</th></tr>
 *   <tr><td>{@code tcp:HOST:PORT}</td><td>connects</td><td>listens; port 0 picks a free port,
 *       reported by {@code boundUri()}</td><td>yes</td></tr>
 *   <tr><td>{@code unix:PATH}</td><td>connects</td><td>listens; a stale socket file is
 *       replaced</td><td>yes</td></tr>
 *   <tr><td>{@code exec:COMMAND}</td><td>{@code /bin/sh -c COMMAND}, stream to its stdin</td>
 *       <td>{@code /bin/sh -c COMMAND}, stream from its stdout</td><td>no</td></tr>
 *   <tr><td>{@code fd:N}</td><td colspan="2">an inherited descriptor; see {@link
 *       dev.ferry.transport.InheritedFds}</td><td>if a socket</td></tr>
 *   <tr><td>{@code file:PATH}</td><td>creates or truncates</td><td>reads</td><td>no</td></tr>
 * </table>
 *
 * <p>Every transport gives a {@link dev.ferry.transport.MigrationChannel}: blocking reads and
 * writes (gathering, so {@link dev.ferry.stream.MigrationOutput} sends pages without copying on
 * sockets and fds), a {@code shutdown()} that stops a blocked reader or writer from another thread
 * (how a migration is cancelled), and one-line errors that start with the URI. The conformance suite
 * {@code BaseTransportTestCase} in the tests states what every transport guarantees.
 *
 * <p>{@link dev.ferry.transport.RawCopy} measures the plain copy rate of a transport, from one large
 * region into another (the yardstick the end-to-end benchmark divides migration throughput by: guest
 * RAM into guest RAM) or between two cache-resident buffers (the transport alone).
 *
 * <p>Decisions: channels are blocking and used from platform threads, as QEMU's migration thread
 * is; the return path is the same channel read from a second thread (spec §10.1); socket buffers
 * are set large ({@link dev.ferry.transport.Transports#SOCKET_BUFFER_BYTES}) with {@code
 * TCP_NODELAY}, since every stream flush should leave at once. The {@code fd:} transport needs
 * native access ({@code --enable-native-access=ALL-UNNAMED}).
 */
package dev.ferry.transport;

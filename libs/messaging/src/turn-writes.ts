import { Socket } from 'node:net';
import type { ChannelModel } from 'amqplib';

/**
 * Frames written to the broker in one turn of the event loop leave in one `writev` (ADR 0058).
 * amqplib's muxer writes every frame to the socket on its own, and with TCP_NODELAY each is a
 * syscall and a packet: a relay's batch of 500 publishes was 500 writes, each paying loopback's
 * whole send path. The socket is corked at the turn's first write and uncorked on the next tick,
 * so nothing waits for a timer. amqplib keeps its socket as `connection.stream` (not in its
 * types); `batchTurnWrites` answers whether it found it, and `turn-writes.spec.ts` fails should an
 * upgrade of amqplib move it.
 */
export function batchTurnWrites(model: ChannelModel): boolean {
  const socket = brokerSocket(model);
  if (!socket) return false;
  const write = socket.write.bind(socket) as (...args: Parameters<Socket['write']>) => boolean;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = ((...args: Parameters<Socket['write']>) => {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write(...args);
  }) as Socket['write'];
  return true;
}

/** The socket amqplib writes a connection's frames to, if it is still where amqplib 2 keeps it. */
export function brokerSocket(model: ChannelModel): Socket | undefined {
  const stream = (model.connection as unknown as { stream?: unknown }).stream;
  return stream instanceof Socket ? stream : undefined;
}

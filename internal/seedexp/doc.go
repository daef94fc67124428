// Package seedexp is the one driver of seed 002's listen(2) backlog experiment (§1.4-1.6,
// appendix 1 client.c and appendix 2 server.c): the seed's client and server as
// poll-driven state machines over small interfaces. The backlog lab (internal/lab) and the
// acceptance scenarios S1-S3 (pkg/tcp) both run it on two shardstack stacks and simnet's
// virtual clock (OnStacks); real-link tests run the same code over Linux sockets
// (NetDialer, NetListener) or a shardstack listener on a real port (TCPListener), on the
// real clock (RealClock).
//
// The client is client.c: connect(); then forever sleep(2), send "hello, world!" (13
// bytes), block in recv() for the reply, and stop when recv() returns 0 or an error. The
// server is server.c with backlog 1: either it never calls accept() (TEST_LISTEN_BACKLOG
// 1, §1.4 and §1.6), or it accepts every connection and serves each one on its own:
// recv(), sleep(1), append " : " and ctime(), send() (§1.5). Both keep Nagle's algorithm
// on, as the C programs do on Linux; the adapters turn it back on where Go turns it off.
//
// The reply is the seed's, not an echo: the message, " : " and a ctime() timestamp of the
// clock's calendar time (Clock.Wall), 41 bytes, which is what the seed's client printed
// ("length=41", "hello, world! : Thu Oct 17 15:25:37 2013"). An echo would be another
// experiment: the seed's server sleeps 1 s before it replies, so a client sends every 3 s,
// not 2; and a reply that is longer than the request tells the two directions apart in
// byte counts and captures. ctime() has a fixed width, so the reply is 41 bytes on any
// clock and the byte counts stay deterministic on the real one too. A virtual clock's zero
// stands for Epoch, chosen so that the first reply of a client started at 0 carries the
// seed's own timestamp.
//
// Each application acts the moment what it waits for happens, as a blocked system call
// returns: connect() when the handshake completes or fails, recv() when data or an error
// arrives, accept() when a child is queued, sleep() at its exact end. On a virtual clock
// the driver looks after every network event (simnet's RunUntil stop hook); on the real
// clock it polls, every RealClock poll interval.
//
// Two things of the C code are not reproduced. server.c passes &client_fd to each
// thread, and the next accept() overwrites it, so a thread may go on serving a newer
// connection (which may be why the seed's §1.5 netstat shows unread bytes piling up on
// client sockets); here each connection has its own handler. And server.c's thread
// ignores recv() returning 0 and would spin on a closed connection; here it closes it.
//
// The package owns the applications' behaviour and their records; it does not reach into
// a stack, and a stack's socket tables and counters stay the caller's to read.
package seedexp

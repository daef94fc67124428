package tcp

// Events is the run-to-completion face of a connection: instead of a goroutine blocking in
// Read, the connection's callbacks run on the goroutine of the shard that owns it, inside
// its loop, right after the packets that caused them. They must not block. They may call
// any Handle method (TryRead, TryWrite, Close, SetUserData, ...) and start new connections
// with DialAsyncHandle; what they ask for is done on the shard's next iteration.
//
// Listeners (ListenOptions.Events) hand over each connection as soon as it is established;
// dials (DialOptions.Events) report their own. As with any Handle, the application closes
// every connection it was given.
type Events interface {
	// OnOpen is called once, when the connection is established.
	OnOpen(h Handle)
	// OnData is called when there is something to read: data, the peer's FIN (TryRead
	// returns io.EOF), or an error (a reset, a refused or timed-out dial).
	OnData(h Handle)
	// OnWritable is called when send-buffer room came back after TryWrite ran out of it.
	OnWritable(h Handle)
}

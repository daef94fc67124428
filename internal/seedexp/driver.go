package seedexp

import "time"

// Config is one run of the experiment.
type Config struct {
	// Starts holds when each client calls connect(), in clock time; client i+1 starts at
	// Starts[i].
	Starts []time.Duration
	// Accept makes the server accept and reply (seed §1.5); without it the server never
	// calls accept() (§1.4, §1.6).
	Accept bool
	// SendEvery is the client's sleep before each send (default SendEvery, 2 s).
	SendEvery time.Duration
	// ReplyPause is the server's sleep before each reply (default ReplyPause, 1 s).
	ReplyPause time.Duration
	// Message is what a client sends (default Message).
	Message string
}

// Driver runs the seed's clients and server against a Dialer and a Listener on a Clock.
// It is not safe for concurrent use: one goroutine drives it, as one process each ran the
// seed's programs.
type Driver struct {
	cfg     Config
	clock   Clock
	dial    Dialer
	clients []*client
	srv     server
	wake    func() bool
}

// New returns a driver for cfg; l may be nil when the server never accepts.
func New(cfg Config, clock Clock, dial Dialer, l Listener) *Driver {
	if cfg.SendEvery <= 0 {
		cfg.SendEvery = SendEvery
	}
	if cfg.ReplyPause <= 0 {
		cfg.ReplyPause = ReplyPause
	}
	if cfg.Message == "" {
		cfg.Message = Message
	}
	cfg.Starts = append([]time.Duration(nil), cfg.Starts...)
	d := &Driver{cfg: cfg, clock: clock, dial: dial}
	for i, at := range d.cfg.Starts {
		d.clients = append(d.clients, &client{cfg: &d.cfg, res: ClientResult{ID: i + 1, Start: at}})
	}
	d.srv = server{cfg: &d.cfg, clock: clock, l: l}
	d.wake = d.step
	return d
}

// RunUntil runs the experiment up to the clock time t: when it returns, every application
// has done what it had to do at or before t and the network has caught up with it, so the
// caller can look at both stacks as of t. Calling it again goes on from there.
func (d *Driver) RunUntil(t time.Duration) {
	for {
		now := d.clock.Now()
		// Act on everything due or ready now, letting the network take in each action.
		for {
			d.clock.Advance(now, nil)
			if !d.step() {
				break
			}
		}
		if now >= t {
			return
		}
		target := t
		if next, ok := d.next(); ok && next < target {
			target = next
		}
		d.clock.Advance(target, d.wake)
	}
}

// step runs every application as far as it can go now; it reports whether any did
// anything.
func (d *Driver) step() bool {
	now := d.clock.Now()
	did := false
	for _, c := range d.clients {
		if c.step(now, d.dial) {
			did = true
		}
	}
	if d.srv.step(now) {
		did = true
	}
	return did
}

// next returns the earliest time an application is due to act by itself (a start or the
// end of a sleep); what it waits for on the network wakes it through the clock.
func (d *Driver) next() (time.Duration, bool) {
	var best time.Duration
	found := false
	consider := func(t time.Duration, ok bool) {
		if ok && (!found || t < best) {
			best, found = t, true
		}
	}
	for _, c := range d.clients {
		consider(c.next())
	}
	for _, h := range d.srv.conns {
		consider(h.next())
	}
	return best, found
}

// Clients returns every client's record, in start order.
func (d *Driver) Clients() []ClientResult {
	out := make([]ClientResult, len(d.clients))
	for i, c := range d.clients {
		out[i] = c.result()
	}
	return out
}

// Conn returns client i's connection (0-based), nil before it has started or if its
// Dial failed.
func (d *Driver) Conn(i int) ClientConn { return d.clients[i].conn }

// Server returns the server's record.
func (d *Driver) Server() ServerResult { return d.srv.result() }

// Close ends the run: it closes every client connection still open and every connection
// the server accepted. The listener and the network stay the caller's.
func (d *Driver) Close() {
	for _, c := range d.clients {
		if c.conn != nil && c.phase != clientDone {
			c.exit()
		}
	}
	d.srv.close()
}

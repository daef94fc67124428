// Package linktest holds what the link backends' real-link tests share.
package linktest

import "net"

// Pattern is size bytes of a pattern whose period (253) is no power of two, so that a
// segment put at the wrong offset shows.
func Pattern(size int) []byte {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i % 253)
	}
	return data
}

// ServeOnce accepts one connection on l, writes data to it and closes it; the channel
// receives the first error, or nil.
func ServeOnce(l net.Listener, data []byte) <-chan error {
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		_, err = c.Write(data)
		c.Close()
		done <- err
	}()
	return done
}

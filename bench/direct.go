package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// directConn is one worker's own keep-alive connection, used when Run is
// given no *http.Client. The worker writes each request and reads its
// answer itself, in its own goroutine: no Transport, whose connection pool
// and two goroutines per connection (a reader and a writer, fed through
// channels) cost about a third of all the CPU of a run against a fast
// server here, on the cores the server needs. Requests are written with
// http.Request.Write and answers parsed with http.ReadResponse, so framing
// (Content-Length or chunked) and keep-alive follow net/http's rules.
type directConn struct {
	host string
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
}

func (d *directConn) close() {
	if d != nil && d.conn != nil {
		d.conn.Close()
	}
}

// dialDirect connects to host (host:port), a loopback address only.
func dialDirect(ctx context.Context, host string) (*directConn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: loopbackOnly}
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	return &directConn{host: host, conn: c, br: bufio.NewReaderSize(c, 16<<10), bw: bufio.NewWriterSize(c, 16<<10)}, nil
}

// doDirect sends req over the worker's connection (dialling one if it has
// none, or none to req's host) and returns the answer's status; its body is
// read into w.buf. The connection is dropped after an error or an answer
// that closes it.
func (w *worker) doDirect(ctx context.Context, req *http.Request, timeout time.Duration) (int, error) {
	if w.dc != nil && w.dc.host != req.URL.Host {
		w.dc.close()
		w.dc = nil
	}
	if w.dc == nil {
		dc, err := dialDirect(ctx, req.URL.Host)
		if err != nil {
			return 0, fmt.Errorf("transport: %w", err)
		}
		w.dc = dc
	}
	dc := w.dc
	fail := func(what string, err error) (int, error) {
		dc.close()
		w.dc = nil
		return 0, fmt.Errorf("transport: %s: %w", what, err)
	}
	if err := dc.conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return fail("deadline", err)
	}
	if err := req.Write(dc.bw); err != nil {
		return fail("write", err)
	}
	if err := dc.bw.Flush(); err != nil {
		return fail("write", err)
	}
	resp, err := http.ReadResponse(dc.br, req)
	if err != nil {
		return fail("read", err)
	}
	if err := w.readBody(resp); err != nil {
		return fail("read body", err)
	}
	if resp.Close {
		dc.close()
		w.dc = nil
	}
	return resp.StatusCode, nil
}

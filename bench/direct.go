package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strconv"
	"time"
)

// target is what a direct Run sends, prepared once for all its workers.
type target struct {
	addr    string // host:port to dial
	dialer  *net.Dialer
	timeout time.Duration
	// prefix is the request line and the headers up to Content-Length,
	// each with its CRLF; full is prefix, the empty line and the body:
	// the whole request when there is no credential.
	prefix, full, body []byte
	// uniqueAt and uniqueLen locate Scenario.Unique in body (uniqueAt -1:
	// none); each request fills it in.
	uniqueAt, uniqueLen int
}

func newTarget(u *url.URL, body []byte, uniqueAt, uniqueLen int, timeout time.Duration) *target {
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	var p []byte
	p = append(p, "POST "+u.RequestURI()+" HTTP/1.1\r\n"...)
	p = append(p, "Host: "+u.Host+"\r\n"...)
	p = append(p, "User-Agent: "+userAgent+"\r\n"...)
	p = append(p, "Content-Type: application/json\r\n"...)
	p = append(p, "X-Prefect-Core-Version: 1.4.1\r\n"...)
	p = append(p, "Content-Length: "+strconv.Itoa(len(body))+"\r\n"...)
	full := append(append(slices.Clip(p), "\r\n"...), body...)
	return &target{
		addr:      addr,
		dialer:    &net.Dialer{Timeout: min(5*time.Second, timeout), KeepAlive: 30 * time.Second, Control: loopbackOnly},
		timeout:   timeout,
		prefix:    p,
		full:      full,
		body:      slices.Clone(body),
		uniqueAt:  uniqueAt,
		uniqueLen: uniqueLen,
	}
}

// directConn is one worker's own keep-alive connection, used when Run is
// given no *http.Client. The worker writes each request and reads its
// answer itself, in its own goroutine: no Transport, whose connection pool
// and two goroutines per connection (a reader and a writer, fed through
// channels) cost about a third of all the CPU of a run against a fast
// server here, on the cores the server needs; and no http.Request or
// http.Response either. Each request is the target's bytes, prepared once,
// plus the credential's header, copied into the worker's buffer and sent
// with one Write; each answer is read through br by readResponse, a
// minimal HTTP/1.1 parser that takes only the status, the framing
// (Content-Length, chunked, or up to EOF) and Connection from the
// headers. Nothing is allocated per request in the steady state.
//
// Timeouts cost no timer per request either: the connection's deadline
// is moved to now+Timeout only when less than 3/4 of Timeout is left of
// it, so that a request is cut after at least 3/4 of Timeout, and at most
// Timeout, since it started being sent. Run's ctx being done sets a
// deadline in the past, which unblocks the worker at once.
type directConn struct {
	conn     net.Conn
	br       *bufio.Reader
	deadline time.Time // set on conn
	stop     func() bool
}

// aLongTimeAgo is a deadline that has passed: set on a connection, it
// fails its pending and future I/O.
var aLongTimeAgo = time.Unix(1, 0)

func (d *directConn) close() {
	if d != nil {
		d.stop()
		d.conn.Close()
	}
}

// dial connects to t's address, a loopback address only.
func (t *target) dial(ctx context.Context) (*directConn, error) {
	c, err := t.dialer.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
	return &directConn{conn: c, br: bufio.NewReaderSize(c, 16<<10), stop: stop}, nil
}

// extendDeadline moves the connection's deadline to now+timeout if less
// than 3/4 of timeout is left of it.
func (d *directConn) extendDeadline(ctx context.Context, timeout time.Duration) error {
	now := time.Now()
	if d.deadline.Sub(now) >= timeout-timeout/4 {
		return nil
	}
	d.deadline = now.Add(timeout)
	if err := d.conn.SetDeadline(d.deadline); err != nil {
		return err
	}
	// Had ctx been cancelled just before, the new deadline would undo
	// the one in the past that cancelling set; if it is cancelled after
	// this check, its deadline comes last.
	return ctx.Err()
}

// doDirect sends the request (with an Authorization header of cred if
// withCred) over the worker's connection, dialling one if it has none, and
// returns the answer's status; its body is read into w.body. The
// connection is dropped after an error or an answer that closes it.
func (w *worker) doDirect(ctx context.Context, t *target, withCred bool, cred string, n, i int) (int, error) {
	if w.dc == nil {
		dc, err := t.dial(ctx)
		if err != nil {
			return 0, fmt.Errorf("transport: %w", err)
		}
		w.dc = dc
	}
	dc := w.dc
	if err := dc.extendDeadline(ctx, t.timeout); err != nil {
		return w.drop("deadline", err)
	}
	req := t.full
	if withCred {
		req = append(w.req[:0], t.prefix...)
		req = append(req, "Authorization: Bearer "...)
		req = append(req, cred...)
		req = append(req, "\r\n\r\n"...)
		req = append(req, t.body...)
		w.req = req
	} else if t.uniqueAt >= 0 {
		req = append(w.req[:0], t.full...)
		w.req = req
	}
	if t.uniqueAt >= 0 {
		at := len(req) - len(t.body) + t.uniqueAt
		fillUnique(req[at:at+t.uniqueLen], n, i)
	}
	if _, err := dc.conn.Write(req); err != nil {
		return w.drop("write", err)
	}
	status, body, keep, err := readResponse(dc.br, w.body)
	w.body = body
	if err != nil {
		return w.drop("read", err)
	}
	if !keep {
		dc.close()
		w.dc = nil
	}
	return status, nil
}

// drop closes the worker's connection after err, and returns err as a
// failure kind: short, without addresses, never with request bytes.
func (w *worker) drop(what string, err error) (int, error) {
	w.dc.close()
	w.dc = nil
	var op *net.OpError
	if errors.As(err, &op) {
		err = op.Err
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		err = se.Err
	}
	return 0, fmt.Errorf("transport: %s: %w", what, err)
}

// Limits of readResponse.
const (
	maxHeaderBytes = 64 << 10 // status line and headers of one answer
	maxInterim     = 16       // 1xx answers before the final one
)

// Errors of readResponse: kinds of failed requests.
var (
	errStatusLine       = errors.New("malformed status line")
	errHeaderLine       = errors.New("malformed header line")
	errHeaderTooLarge   = errors.New("header section over 64 KiB")
	errContentLength    = errors.New("malformed Content-Length")
	errTransferEncoding = errors.New("unsupported Transfer-Encoding")
	errLengthAndChunked = errors.New("both Content-Length and chunked")
	errSwitching        = errors.New("unexpected 101 Switching Protocols")
	errTooManyInterim   = errors.New("too many 1xx answers")
)

// respHead is what readResponse takes from an answer's head.
type respHead struct {
	status        int
	http10        bool
	contentLength int64 // -1: none
	chunked       bool
	close         bool // Connection: close
	keepAlive     bool // Connection: keep-alive
}

// readResponse reads an HTTP/1.1 answer from br, skipping interim 1xx
// ones, with its body in buf (grown if need be), and returns its status,
// its body and whether the connection may carry another request.
func readResponse(br *bufio.Reader, buf []byte) (status int, body []byte, keep bool, err error) {
	var h respHead
	for n := 0; ; n++ {
		if err := readHead(br, &h); err != nil {
			return 0, buf[:0], false, err
		}
		if h.status >= 200 {
			break
		} else if h.status == 101 {
			return 0, buf[:0], false, errSwitching
		} else if n == maxInterim {
			return 0, buf[:0], false, errTooManyInterim
		}
	}
	keep = !h.close && (!h.http10 || h.keepAlive)
	switch {
	case h.status == 204 || h.status == 304:
		return h.status, buf[:0], keep, nil
	case h.chunked:
		body, err = readAll(httputil.NewChunkedReader(br), buf)
		if err == nil {
			err = skipTrailer(br)
		}
	case h.contentLength > maxBody:
		return 0, buf[:0], false, errBodyTooLarge
	case h.contentLength >= 0:
		body = slices.Grow(buf[:0], int(h.contentLength))[:h.contentLength]
		_, err = io.ReadFull(br, body)
	default: // the body runs to the end of the connection
		body, err = readAll(br, buf)
		keep = false
	}
	if err != nil {
		return 0, body[:0], false, unexpectedEOF(err)
	}
	return h.status, body, keep, nil
}

// readHead reads an answer's status line and headers into h.
func readHead(br *bufio.Reader, h *respHead) error {
	*h = respHead{contentLength: -1}
	line, err := br.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			return errStatusLine
		} else if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return err // io.EOF: closed before answering
	}
	size := len(line)
	if err := h.parseStatusLine(trimEOL(line)); err != nil {
		return err
	}
	for {
		line, err := br.ReadSlice('\n')
		size += len(line)
		if size > maxHeaderBytes {
			return errHeaderTooLarge
		}
		if err == bufio.ErrBufferFull {
			// A line longer than br's buffer: acceptable only for a
			// header readResponse ignores, whose rest is skipped.
			colon := bytes.IndexByte(line, ':')
			if colon <= 0 || isFramingHeader(line[:colon]) {
				return errHeaderLine
			}
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				if size += len(line); size > maxHeaderBytes {
					return errHeaderTooLarge
				}
			}
			if err != nil {
				return unexpectedEOF(err)
			}
			continue
		}
		if err != nil {
			return unexpectedEOF(err)
		}
		line = trimEOL(line)
		if len(line) == 0 {
			break
		}
		if err := h.parseHeader(line); err != nil {
			return err
		}
	}
	if h.chunked && h.contentLength >= 0 {
		return errLengthAndChunked
	}
	return nil
}

// parseStatusLine parses "HTTP/1.x NNN[ reason]".
func (h *respHead) parseStatusLine(line []byte) error {
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || !isDigit(line[7]) || line[8] != ' ' ||
		line[9] == '0' || !isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) ||
		(len(line) > 12 && line[12] != ' ') {
		return errStatusLine
	}
	h.http10 = line[7] == '0'
	h.status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	return nil
}

// parseHeader takes what it needs from the header line "Name: value".
func (h *respHead) parseHeader(line []byte) error {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || bytes.IndexByte(line[:colon], ' ') >= 0 || bytes.IndexByte(line[:colon], '\t') >= 0 {
		return errHeaderLine // also an obsolete folded line, which starts with a space
	}
	name, value := line[:colon], trimOWS(line[colon+1:])
	switch {
	case equalFold(name, "Content-Length"):
		n, ok := parseContentLength(value)
		if !ok || (h.contentLength >= 0 && h.contentLength != n) {
			return errContentLength
		}
		h.contentLength = n
	case equalFold(name, "Transfer-Encoding"):
		if h.chunked || !equalFold(value, "chunked") {
			return errTransferEncoding
		}
		h.chunked = true
	case equalFold(name, "Connection"):
		for len(value) > 0 {
			tok := value
			if i := bytes.IndexByte(value, ','); i >= 0 {
				tok, value = value[:i], value[i+1:]
			} else {
				value = nil
			}
			tok = trimOWS(tok)
			if equalFold(tok, "close") {
				h.close = true
			} else if equalFold(tok, "keep-alive") {
				h.keepAlive = true
			}
		}
	}
	return nil
}

func isFramingHeader(name []byte) bool {
	return equalFold(name, "Content-Length") || equalFold(name, "Transfer-Encoding") || equalFold(name, "Connection")
}

// skipTrailer reads the trailer of a chunked body, up to its empty line.
func skipTrailer(br *bufio.Reader) error {
	size, partial := 0, false
	for {
		line, err := br.ReadSlice('\n')
		if size += len(line); size > maxHeaderBytes {
			return errHeaderTooLarge
		}
		if err == bufio.ErrBufferFull {
			partial = true
			continue
		} else if err != nil {
			return unexpectedEOF(err)
		}
		if !partial && len(trimEOL(line)) == 0 {
			return nil
		}
		partial = false
	}
}

// parseContentLength parses a Content-Length value: decimal digits only.
func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// trimEOL removes the line's LF and the CR before it, if any.
func trimEOL(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line
}

// trimOWS removes spaces and tabs around v.
func trimOWS(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// equalFold reports whether b is s, ignoring ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

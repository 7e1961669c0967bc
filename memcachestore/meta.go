package memcachestore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// ErrReply wraps an error memcached answered to one command (SERVER_ERROR,
// such as "out of memory storing object" under -M, or CLIENT_ERROR): that
// command's, or its key's, problem; the node answered and serves the others.
// Errors that do not wrap it mean the node did not answer.
var ErrReply = errors.New("memcachestore: error reply")

// ClientOptions tune a Client; the zero value is usable.
type ClientOptions struct {
	// Timeout bounds one round trip to a node (a pipeline of commands),
	// unless the caller's context ends sooner; default 2s.
	Timeout time.Duration
	// DialTimeout bounds connecting to a node; default 1s.
	DialTimeout time.Duration
	// MaxIdle is how many idle connections each node keeps; default 32.
	MaxIdle int
}

// Client is a memcached client of one or more nodes, speaking the meta
// protocol. It is safe for concurrent use.
type Client struct {
	nodes []*node
	ring  ring
	opts  ClientOptions
}

// node is one memcached server and its idle connections.
type node struct {
	addr string
	// mu guards idle and closed.
	mu     sync.Mutex
	idle   []*conn
	closed bool
}

type conn struct {
	nc net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
}

// NewClient returns a client of the memcached servers at addrs
// ("host:port"). Nothing is dialled until the first command.
func NewClient(addrs []string, opts ClientOptions) (*Client, error) {
	if len(addrs) == 0 {
		return nil, errors.New("memcachestore: no memcached address")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = time.Second
	}
	if opts.MaxIdle <= 0 {
		opts.MaxIdle = 32
	}
	c := &Client{ring: newRing(addrs), opts: opts}
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("memcachestore: address %q: %w", a, err)
		}
		c.nodes = append(c.nodes, &node{addr: a})
	}
	return c, nil
}

// Close closes the idle connections; connections in use close when their
// command ends.
func (c *Client) Close() error {
	for _, n := range c.nodes {
		n.mu.Lock()
		n.closed = true
		idle := n.idle
		n.idle = nil
		n.mu.Unlock()
		for _, cn := range idle {
			_ = cn.nc.Close()
		}
	}
	return nil
}

// Status is a command's answer.
type Status uint8

// The answers of mg and ms.
const (
	StatusNone      Status = iota // not answered (Op.Err says why)
	StatusHit                     // mg: VA, the value is in Op.Value
	StatusMiss                    // mg: EN
	StatusStored                  // ms: HD; md: HD (deleted)
	StatusNotStored               // ms: NS (add found an item)
	StatusExists                  // ms: EX (compare-and-swap lost: the item changed)
	StatusNotFound                // ms: NF (compare-and-swap: the item is gone)
)

// Op is one meta command: mg (get, with its CAS token and remaining TTL)
// unless Set, then ms, or Delete, then md.
type Op struct {
	// Key is the memcached key (see Key).
	Key string
	// Set makes the command ms, storing Value.
	Set   bool
	Value []byte
	// Delete makes the command md: the item is removed (only if its CAS
	// token is still CAS, when that is not 0).
	Delete bool
	// Add stores only where no item exists (ms mode E).
	Add bool
	// CAS, when not 0, stores only if the item's CAS token is still this
	// (ms flag C).
	CAS uint64
	// Exptime is memcached's expiry: 0 none, up to 30 days in seconds,
	// beyond that a Unix time (see exptime).
	Exptime int64

	// Status is the answer; Err is set when there is none (the node is down
	// or answered an error).
	Status Status
	Err    error
	// Token is the item's CAS token (mg and a stored ms).
	Token uint64
	// TTL is the item's remaining TTL in seconds, -1 for none (mg).
	TTL int64
}

// Do sends the commands, pipelined: those of each node in one round trip on
// one connection, the nodes in parallel. Each Op gets its answer or its
// error; a node that cannot be reached fails its commands only.
func (c *Client) Do(ctx context.Context, ops []*Op) {
	if len(ops) == 0 {
		return
	}
	if len(c.nodes) == 1 {
		c.nodes[0].do(ctx, c.opts, ops)
		return
	}
	byNode := make([][]*Op, len(c.nodes))
	for _, op := range ops {
		n := c.ring.node(op.Key)
		byNode[n] = append(byNode[n], op)
	}
	var wg sync.WaitGroup
	for i, mine := range byNode {
		if len(mine) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.nodes[i].do(ctx, c.opts, mine)
		}()
	}
	wg.Wait()
}

// Node returns the address of the node that holds key.
func (c *Client) Node(key string) string { return c.nodes[c.ring.node(key)].addr }

// Addrs returns the nodes' addresses.
func (c *Client) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.addr
	}
	return out
}

// Raw sends one text command line to the node at addr and returns the
// answer's lines up to one that starts with stop ("END" for stats): for
// operator commands, not records.
func (c *Client) Raw(ctx context.Context, addr, line, stop string) ([]string, error) {
	for _, n := range c.nodes {
		if n.addr != addr {
			continue
		}
		cn, _, err := n.get(ctx, c.opts)
		if err != nil {
			return nil, err
		}
		stopDeadline := deadline(ctx, cn, c.opts.Timeout)
		defer stopDeadline()
		var lines []string
		_, err = cn.w.WriteString(line + "\r\n")
		if err == nil {
			err = cn.w.Flush()
		}
		for err == nil {
			var l []byte
			if l, err = cn.r.ReadSlice('\n'); err == nil {
				s := string(bytes.TrimRight(l, "\r\n"))
				if len(s) >= len(stop) && s[:len(stop)] == stop {
					n.put(cn, c.opts.MaxIdle)
					return lines, nil
				}
				lines = append(lines, s)
			}
		}
		_ = cn.nc.Close()
		return nil, fmt.Errorf("memcachestore: %s: %w", addr, err)
	}
	return nil, fmt.Errorf("memcachestore: no node %s", addr)
}

// get returns an idle connection (reused true) or a new one.
func (n *node) get(ctx context.Context, opts ClientOptions) (cn *conn, reused bool, err error) {
	n.mu.Lock()
	if k := len(n.idle); k > 0 {
		cn := n.idle[k-1]
		n.idle = n.idle[:k-1]
		n.mu.Unlock()
		return cn, true, nil
	}
	n.mu.Unlock()
	d := net.Dialer{Timeout: opts.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", n.addr)
	if err != nil {
		return nil, false, fmt.Errorf("memcachestore: %w", err)
	}
	return &conn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10), w: bufio.NewWriterSize(nc, 64<<10)}, false, nil
}

// dropIdle closes the idle connections: after one of them was found broken
// (the server restarted), the others are too.
func (n *node) dropIdle() {
	n.mu.Lock()
	idle := n.idle
	n.idle = nil
	n.mu.Unlock()
	for _, cn := range idle {
		_ = cn.nc.Close()
	}
}

func (n *node) put(cn *conn, maxIdle int) {
	n.mu.Lock()
	if !n.closed && len(n.idle) < maxIdle {
		n.idle = append(n.idle, cn)
		cn = nil
	}
	n.mu.Unlock()
	if cn != nil {
		_ = cn.nc.Close()
	}
}

// deadline sets the connection's deadline from ctx and timeout, and makes
// ctx's cancellation interrupt it; the returned func undoes that.
func deadline(ctx context.Context, cn *conn, timeout time.Duration) func() {
	dl := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = cn.nc.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = cn.nc.SetDeadline(time.Unix(1, 0)) })
	return func() { stop() }
}

// do runs one node's commands on one connection: a writer goroutine sends
// them while this one reads the answers, so a pipeline larger than the
// socket buffers cannot deadlock.
func (n *node) do(ctx context.Context, opts ClientOptions, ops []*Op) {
	reused, answered := n.run(ctx, opts, ops)
	if reused && answered == 0 && ops[0].Err != nil && ctx.Err() == nil {
		// A pooled connection that answers nothing was most likely closed by
		// a server restart, as are its idle siblings: drop them and send once
		// more on a fresh connection. Sending again is safe: a write that did
		// happen makes its repeat lose the compare-and-swap, and the change
		// is then read again and found stale.
		n.dropIdle()
		n.run(ctx, opts, ops)
	}
}

// run sends ops on one connection and reads their answers; it reports
// whether the connection came from the pool and how many answers arrived.
func (n *node) run(ctx context.Context, opts ClientOptions, ops []*Op) (reused bool, answered int) {
	for _, op := range ops {
		op.Status, op.Err = StatusNone, nil
	}
	fail := func(from int, err error) {
		err = fmt.Errorf("memcachestore: %s: %w", n.addr, err)
		for _, op := range ops[from:] {
			if op.Status == StatusNone && op.Err == nil {
				op.Err = err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		fail(0, err)
		return false, 0
	}
	cn, reused, err := n.get(ctx, opts)
	if err != nil {
		fail(0, err)
		return false, 0
	}
	stop := deadline(ctx, cn, opts.Timeout)
	defer stop()
	// The writer reads only the request fields of ops; the reader writes
	// only the answer fields.
	werr := make(chan error, 1)
	go func() { werr <- writeOps(cn.w, ops) }()
	healthy := true
	for ; answered < len(ops); answered++ {
		ok, err := readAnswer(cn.r, ops[answered])
		if err != nil {
			healthy = false
			_ = cn.nc.Close() // unblocks the writer
			fail(answered, err)
			break
		}
		healthy = healthy && ok
	}
	if err := <-werr; err != nil {
		healthy = false
		fail(0, err)
	}
	if healthy && ctx.Err() == nil {
		n.put(cn, opts.MaxIdle)
	} else {
		_ = cn.nc.Close()
	}
	return reused, answered
}

func writeOps(w *bufio.Writer, ops []*Op) error {
	var num [20]byte
	for _, op := range ops {
		if op.Delete {
			w.WriteString("md ")
			w.WriteString(op.Key)
			if op.CAS != 0 {
				w.WriteString(" C")
				w.Write(strconv.AppendUint(num[:0], op.CAS, 10))
			}
			if _, err := w.WriteString("\r\n"); err != nil {
				return err
			}
			continue
		}
		if !op.Set {
			w.WriteString("mg ")
			w.WriteString(op.Key)
			w.WriteString(" v c t\r\n")
			continue
		}
		w.WriteString("ms ")
		w.WriteString(op.Key)
		w.WriteByte(' ')
		w.Write(strconv.AppendInt(num[:0], int64(len(op.Value)), 10))
		w.WriteString(" c")
		if op.Add {
			w.WriteString(" ME")
		}
		if op.CAS != 0 {
			w.WriteString(" C")
			w.Write(strconv.AppendUint(num[:0], op.CAS, 10))
		}
		if op.Exptime != 0 {
			w.WriteString(" T")
			w.Write(strconv.AppendInt(num[:0], op.Exptime, 10))
		}
		w.WriteString("\r\n")
		w.Write(op.Value)
		if _, err := w.WriteString("\r\n"); err != nil {
			return err
		}
	}
	return w.Flush()
}

// readAnswer reads one command's answer into op. An error means the
// connection is unusable; ok false means the server answered an error that
// leaves the connection in step but should not be trusted further.
func readAnswer(r *bufio.Reader, op *Op) (ok bool, err error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return false, err
	}
	line = bytes.TrimRight(line, "\r\n")
	code, rest, _ := bytes.Cut(line, []byte{' '})
	switch string(code) {
	case "VA":
		size, flags, _ := bytes.Cut(rest, []byte{' '})
		n, err := strconv.Atoi(string(size))
		if err != nil || n < 0 {
			return false, fmt.Errorf("bad answer %q", line)
		}
		readFlags(op, flags)
		op.Value = make([]byte, n+2)
		if _, err := io.ReadFull(r, op.Value); err != nil {
			return false, err
		}
		op.Value = op.Value[:n]
		op.Status = StatusHit
	case "EN":
		op.Status, op.Value = StatusMiss, nil
	case "HD":
		readFlags(op, rest)
		op.Status = StatusStored
	case "NS":
		op.Status = StatusNotStored
	case "EX":
		op.Status = StatusExists
	case "NF":
		op.Status = StatusNotFound
	case "SERVER_ERROR":
		// For example "out of memory storing object" under -M: the store
		// is full. The command is consumed; the connection stays in step.
		op.Err = fmt.Errorf("%w: server error: %s", ErrReply, rest)
		return true, nil
	default:
		op.Err = fmt.Errorf("%w: answer %q", ErrReply, line)
		return false, nil
	}
	return true, nil
}

func readFlags(op *Op, flags []byte) {
	op.TTL = -1
	for len(flags) > 0 {
		var f []byte
		f, flags, _ = bytes.Cut(flags, []byte{' '})
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case 'c':
			op.Token, _ = strconv.ParseUint(string(f[1:]), 10, 64)
		case 't':
			op.TTL, _ = strconv.ParseInt(string(f[1:]), 10, 64)
		}
	}
}

// maxRelative is the largest expiry memcached takes as seconds from now;
// anything larger it reads as a Unix time.
const maxRelative = 30 * 24 * 3600

// exptime is the expiry for a TTL: 0 none; whole seconds rounded up, so a
// positive TTL never becomes none; a Unix time beyond 30 days.
func exptime(ttl time.Duration, now time.Time) int64 {
	if ttl <= 0 {
		return 0
	}
	s := int64((ttl + time.Second - 1) / time.Second)
	if s > maxRelative {
		return now.Unix() + s
	}
	return s
}

// Package pubsubfake serves the client library's fake Pub/Sub (pstest) with
// a StreamingPull that sends batches, as the real service does.
//
// pstest's own StreamingPull hands out one message per 10 ms tick (about
// 300 a second), which would make the fake, not the worker, the subject of
// every pull test and benchmark. Here StreamingPull is served from pstest's
// unary Pull (up to 1,000 messages at once) on the same subscription state,
// so dead-lettering, delivery attempts, ack deadlines and redelivery stay
// pstest's; the stream honours the client's max_outstanding_messages, and
// when the subscription is empty it polls again after a short, growing
// pause (1 to 10 ms), never a fixed wait. Everything else is pstest as is.
//
// The fake tallies the acknowledgements it receives (Acks), so tests and
// local runs can tell an acknowledged message from a lost or a doubled ack.
// For chaos tests it can inject faults (SetFaults: duplicate deliveries and
// reordering) and move its clock (Advance), so the leases of a killed
// client expire without waiting out the ack deadline.
// cmd/pubsubfake serves it in its own process (PUBSUB_EMULATOR_HOST).
package pubsubfake

import (
	"context"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Server is the fake: Addr is where clients connect.
type Server struct {
	Addr string

	ps  *pstest.Server
	srv *grpc.Server
	sub *subscriber
}

// Start serves the fake on addr ("127.0.0.1:0": any free port).
func Start(addr string) (*Server, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	ps := pstest.NewServer()
	clock := &clock{}
	ps.SetTimeNowFunc(clock.now)
	s := &Server{Addr: lis.Addr().String(), ps: ps, srv: grpc.NewServer(),
		sub: &subscriber{GServer: &ps.GServer, ps: ps, clock: clock, duplicated: map[string]bool{}, owner: map[string]*pullStream{}, msgOf: map[string]string{},
			current: map[string]int{}, acked: map[string]bool{}}}
	pubsubpb.RegisterPublisherServer(s.srv, &ps.GServer)
	pubsubpb.RegisterSubscriberServer(s.srv, s.sub)
	pubsubpb.RegisterSchemaServiceServer(s.srv, &ps.GServer)
	go func() { _ = s.srv.Serve(lis) }()
	return s, nil
}

// Messages returns every message published so far, with its delivery and
// ack counts (pstest's view).
func (s *Server) Messages() []*pstest.Message { return s.ps.Messages() }

// AckCounts are the acknowledgements the fake received.
type AckCounts struct {
	// Current counts, per message ID, the acks that took effect (pstest's
	// judgement: the ack id of the message's current delivery), that is
	// the ack that takes the message off its subscription. Only deliveries
	// of this fake's StreamingPull are counted.
	Current map[string]int
	// Stale counts acks that took no effect: of an ack id the message no
	// longer has (it was nacked or redelivered since), or repeated.
	Stale int
	// Repeated counts acks of an ack id already acknowledged once.
	Repeated int
	// Duplicated counts messages delivered twice by Faults.Duplicate.
	Duplicated int
}

// Acked returns how many messages have had their current delivery acked.
func (s *Server) Acked() int64 {
	s.sub.mu.Lock()
	defer s.sub.mu.Unlock()
	return int64(len(s.sub.current))
}

// Acks returns a copy of the acknowledgement tallies.
func (s *Server) Acks() AckCounts {
	s.sub.mu.Lock()
	defer s.sub.mu.Unlock()
	c := AckCounts{Current: make(map[string]int, len(s.sub.current)), Stale: s.sub.stale, Repeated: s.sub.repeated,
		Duplicated: len(s.sub.duplicated)}
	for id, n := range s.sub.current {
		c.Current[id] = n
	}
	return c
}

// Faults are injected into StreamingPull deliveries.
type Faults struct {
	// Duplicate is the share of messages delivered a second time while the
	// first delivery is still out: the fake hands the lease back at once
	// (a nack), so the next response carries the message again under a new
	// ack id and the first delivery's ack no longer counts, as when a lease
	// expires during processing. At most once per message.
	Duplicate float64
	// Shuffle reorders each response's messages.
	Shuffle bool
	// Seed seeds the random choices.
	Seed uint64
}

// SetFaults sets the faults of the deliveries from now on.
func (s *Server) SetFaults(f Faults) {
	s.sub.mu.Lock()
	defer s.sub.mu.Unlock()
	s.sub.faults, s.sub.rng = f, rand.New(rand.NewPCG(f.Seed, f.Seed+1))
}

// Advance moves the fake's clock forward by d: leases whose deadline falls
// within it end, and their messages are delivered again.
func (s *Server) Advance(d time.Duration) { s.sub.clock.offset.Add(int64(d)) }

// Outstanding counts the deliveries sent on StreamingPull streams that are
// still open and not yet acked or nacked.
func (s *Server) Outstanding() int {
	s.sub.mu.Lock()
	defer s.sub.mu.Unlock()
	return len(s.sub.owner)
}

// Streams counts the StreamingPull calls being served.
func (s *Server) Streams() int64 { return s.sub.streams.Load() }

// clock is time.Now plus an offset Advance moves.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// Close stops the server.
func (s *Server) Close() error {
	s.srv.Stop()
	return s.ps.Close()
}

// subscriber is pstest's Subscriber service with StreamingPull replaced.
type subscriber struct {
	*pstest.GServer

	ps      *pstest.Server
	clock   *clock
	streams atomic.Int64 // StreamingPull calls being served

	// mu guards owner, msgOf, the ack tallies and the faults; it is held
	// across an Acknowledge, so the tallies see acks one call at a time.
	mu              sync.Mutex
	faults          Faults
	rng             *rand.Rand
	duplicated      map[string]bool        // message IDs delivered twice by Faults.Duplicate
	owner           map[string]*pullStream // ack id -> the stream that delivered it, until settled
	msgOf           map[string]string      // ack id -> message ID, for every delivery sent
	current         map[string]int         // message ID -> acks that took effect
	acked           map[string]bool        // ack ids acknowledged
	stale, repeated int
}

// pullStream is one StreamingPull's flow-control state.
type pullStream struct {
	mu          sync.Mutex
	outstanding map[string]time.Time // ack id -> its deadline
	room        chan struct{}        // signalled when outstanding shrinks
}

// settled forgets ack ids that were acked or nacked, by any route.
func (s *subscriber) settled(ids []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		st := s.owner[id]
		if st == nil {
			continue
		}
		delete(s.owner, id)
		st.mu.Lock()
		delete(st.outstanding, id)
		st.mu.Unlock()
		select {
		case st.room <- struct{}{}:
		default:
		}
	}
}

func (s *subscriber) Acknowledge(ctx context.Context, req *pubsubpb.AcknowledgeRequest) (*emptypb.Empty, error) {
	var res *emptypb.Empty
	err := s.tally(req.AckIds, func() (err error) {
		res, err = s.GServer.Acknowledge(ctx, req)
		return err
	})
	if err == nil {
		s.settled(req.AckIds)
	}
	return res, err
}

func (s *subscriber) ModifyAckDeadline(ctx context.Context, req *pubsubpb.ModifyAckDeadlineRequest) (*emptypb.Empty, error) {
	res, err := s.GServer.ModifyAckDeadline(ctx, req)
	if err == nil && req.AckDeadlineSeconds == 0 {
		s.settled(req.AckIds)
	}
	return res, err
}

// tally calls ack (pstest's Acknowledge) and counts what it did to the
// messages this fake's StreamingPull delivered: pstest's own ack count of
// each message, read before and after under mu, says which acks took effect,
// exactly as pstest judged them.
func (s *subscriber) tally(ids []string, ack func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	before := map[string]int{}
	ours := 0
	for _, id := range ids {
		msgID, ok := s.msgOf[id]
		if !ok {
			continue // not a StreamingPull delivery (a unary Pull's)
		}
		ours++
		if s.acked[id] {
			s.repeated++
		}
		s.acked[id] = true
		if _, seen := before[msgID]; !seen {
			before[msgID] = s.ps.Message(msgID).Acks
		}
	}
	err := ack()
	effective := 0
	for msgID, n := range before {
		if d := s.ps.Message(msgID).Acks - n; d > 0 {
			s.current[msgID] += d
			effective += d
		}
	}
	s.stale += ours - effective
	return err
}

// StreamingPull sends batches from pstest's Pull while the client has room.
func (s *subscriber) StreamingPull(sps pubsubpb.Subscriber_StreamingPullServer) error {
	s.streams.Add(1)
	defer s.streams.Add(-1)
	req, err := sps.Recv()
	if err != nil {
		return err
	}
	ctx := sps.Context()
	sub := req.Subscription
	if _, err := s.GServer.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: sub}); err != nil {
		return err
	}
	limit := int(req.MaxOutstandingMessages)
	if limit <= 0 {
		limit = 1000
	}
	deadline := time.Duration(req.StreamAckDeadlineSeconds) * time.Second
	if deadline <= 0 {
		deadline = 10 * time.Second
	}
	st := &pullStream{outstanding: map[string]time.Time{}, room: make(chan struct{}, 1)}
	defer s.forget(st)
	// Acks and nacks sent on the stream itself.
	go func() {
		for {
			r, err := sps.Recv()
			if err != nil {
				return
			}
			if len(r.AckIds) > 0 {
				if _, err := s.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: sub, AckIds: r.AckIds}); err != nil {
					return
				}
			}
			var nacks []string
			for i, id := range r.ModifyDeadlineAckIds {
				if i < len(r.ModifyDeadlineSeconds) && r.ModifyDeadlineSeconds[i] == 0 {
					nacks = append(nacks, id)
				}
			}
			if len(nacks) > 0 {
				_, _ = s.ModifyAckDeadline(ctx, &pubsubpb.ModifyAckDeadlineRequest{Subscription: sub, AckIds: nacks})
			}
		}
	}()
	idle := time.Millisecond
	for {
		room := limit - st.held(s.clock.now())
		if room <= 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-st.room:
			case <-time.After(100 * time.Millisecond): // deadlines expire without a signal
			}
			continue
		}
		resp, err := s.GServer.Pull(ctx, &pubsubpb.PullRequest{Subscription: sub, MaxMessages: int32(min(room, 1000)),
			//lint:ignore SA1019 the fake polls pstest, whose Pull would otherwise wait; the real service is never asked this
			ReturnImmediately: true})
		if err != nil {
			return err
		}
		if len(resp.ReceivedMessages) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(idle):
			}
			idle = min(2*idle, 10*time.Millisecond)
			continue
		}
		idle = time.Millisecond
		ids := make([]string, len(resp.ReceivedMessages))
		for i, m := range resp.ReceivedMessages {
			ids[i] = m.AckId
		}
		// Pull gave them the subscription's deadline; a stream has its own.
		if _, err := s.GServer.ModifyAckDeadline(ctx, &pubsubpb.ModifyAckDeadlineRequest{Subscription: sub,
			AckIds: ids, AckDeadlineSeconds: int32(deadline / time.Second)}); err != nil {
			return err
		}
		now := s.clock.now()
		s.mu.Lock()
		dups := s.inject(resp.ReceivedMessages)
		st.mu.Lock()
		for _, m := range resp.ReceivedMessages {
			st.outstanding[m.AckId] = now.Add(deadline)
			s.owner[m.AckId] = st
			s.msgOf[m.AckId] = m.GetMessage().GetMessageId()
		}
		st.mu.Unlock()
		s.mu.Unlock()
		if err := sps.Send(&pubsubpb.StreamingPullResponse{ReceivedMessages: resp.ReceivedMessages}); err != nil {
			return err
		}
		if len(dups) > 0 {
			if _, err := s.ModifyAckDeadline(ctx, &pubsubpb.ModifyAckDeadlineRequest{Subscription: sub, AckIds: dups}); err != nil {
				return err
			}
		}
	}
}

// inject applies the faults to a response about to be sent (shuffling it)
// and returns the ack ids to hand back at once (duplicates). s.mu is held.
func (s *subscriber) inject(rms []*pubsubpb.ReceivedMessage) []string {
	if s.rng == nil {
		return nil
	}
	if s.faults.Shuffle {
		s.rng.Shuffle(len(rms), func(i, j int) { rms[i], rms[j] = rms[j], rms[i] })
	}
	var dups []string
	for _, m := range rms {
		id := m.GetMessage().GetMessageId()
		if !s.duplicated[id] && s.rng.Float64() < s.faults.Duplicate {
			s.duplicated[id] = true
			dups = append(dups, m.AckId)
		}
	}
	return dups
}

// forget drops a finished stream's ack ids from the owner map.
func (s *subscriber) forget(st *pullStream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, o := range s.owner {
		if o == st {
			delete(s.owner, id)
		}
	}
}

// held counts the stream's outstanding messages, forgetting those whose
// deadline passed (pstest redelivers them).
func (st *pullStream) held(now time.Time) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	for id, d := range st.outstanding {
		if now.After(d) {
			delete(st.outstanding, id)
		}
	}
	return len(st.outstanding)
}

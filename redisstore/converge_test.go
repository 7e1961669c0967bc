package redisstore

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
)

// disorderedStream returns, for keys many rows, a shuffled stream of
// upserts and deletes with versions increasing per key and 30% duplicates,
// and the record each key must end with (that of its newest change).
func disorderedStream(prefix, table string, keys int, rnd *rand.Rand) ([]cdc.Change, map[string]map[string]string) {
	var stream []cdc.Change
	want := map[string]map[string]string{}
	for k := 0; k < keys; k++ {
		key := fmt.Sprintf("%s%s:%d", prefix, table, k)
		seq, pos := uint64(3), uint64(0)
		for i, n := 0, 1+rnd.IntN(6); i < n; i++ {
			if rnd.IntN(5) == 0 { // binlog rotation
				seq, pos = seq+1, 0
			}
			pos += 1 + uint64(rnd.IntN(1000))
			v := cdc.NewVersion(seq, pos, uint64(rnd.IntN(3)))
			ch := cdc.Change{Op: cdc.OpUpdate, Table: table, Key: key, Version: v, Server: "srv", ServerID: 1}
			if rnd.IntN(3) == 0 {
				ch.Op = cdc.OpDelete
				want[key] = map[string]string{"v": string(v), "t": "1"}
			} else {
				ch.Row = rowJSON(k, i)
				want[key] = map[string]string{"v": string(v), "d": string(ch.Row)}
			}
			stream = append(stream, ch)
		}
	}
	for i, n := 0, len(stream)*3/10; i < n; i++ {
		stream = append(stream, stream[rnd.IntN(len(stream))])
	}
	rnd.Shuffle(len(stream), func(i, j int) { stream[i], stream[j] = stream[j], stream[i] })
	return stream, want
}

func TestConvergence(t *testing.T) {
	for _, via := range []string{"Apply", "ApplyBatch"} {
		t.Run(via, func(t *testing.T) {
			c, prefix := testredis.Shared(t)
			s := newTestStore(t, c, testConfig(prefix), Options{})
			rnd := rand.New(rand.NewPCG(42, uint64(len(via))))
			stream, want := disorderedStream(prefix, "db.rep", 300, rnd)

			const workers = 16
			var wg sync.WaitGroup
			counts := make([][cdc.NumOutcomes]int, workers)
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx := context.Background()
					mine := stream[w*len(stream)/workers : (w+1)*len(stream)/workers]
					if via == "Apply" {
						for _, ch := range mine {
							out, err := s.Apply(ctx, ch)
							if err != nil {
								t.Error(err)
								return
							}
							counts[w][out]++
						}
						return
					}
					for len(mine) > 0 {
						n := min(len(mine), 1+w*3)
						for _, r := range s.ApplyBatch(ctx, mine[:n]) {
							if r.Err != nil {
								t.Error(r.Err)
								return
							}
							counts[w][r.Outcome]++
						}
						mine = mine[n:]
					}
				}()
			}
			wg.Wait()
			var total [cdc.NumOutcomes]int
			for _, cw := range counts {
				for o, n := range cw {
					total[o] += n
				}
			}
			if total[cdc.OutcomeStale] == 0 || total[cdc.OutcomeApplied]+total[cdc.OutcomeDeleted] < len(want) {
				t.Errorf("outcomes %v: want some stale and at least one write per key", total)
			}
			ctx := context.Background()
			for key, rec := range want {
				got, err := c.HGetAll(ctx, key).Result()
				if err != nil {
					t.Fatal(err)
				}
				if !maps.Equal(got, rec) {
					t.Errorf("%s: %v, want %v", key, got, rec)
				}
			}
		})
	}
}

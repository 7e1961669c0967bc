package main

import (
	"context"
	"fmt"
	"os/exec"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cloudsql-cache/cloudsql-cache/bench"
)

// pullRig is the streaming-pull worker under test, with the fake Pub/Sub
// it pulls from, each in its own process: only the worker's CPU is
// charged to the events.
type pullRig struct {
	fake   *exec.Cmd
	worker *server
	client *pubsub.Client
	pub    *pubsub.Publisher
}

// startPull starts cmd/pubsubfake and worker/cmd (bins: the worker, the
// fake) with a topic and its pull subscription, the worker under prefix.
func (b *bencher) startPull(ctx context.Context, workerBin, fakeBin, prefix string) (*pullRig, error) {
	r := &pullRig{}
	var addr string
	var err error
	if r.fake, addr, err = startFake(fakeBin, "-addr", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	if r.client, err = pubsub.NewClient(ctx, "bench", option.WithEndpoint(addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))); err != nil {
		r.stop()
		return nil, err
	}
	const topic, sub = "projects/bench/topics/cdc", "projects/bench/subscriptions/cdc-pull"
	if _, err := r.client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		r.stop()
		return nil, err
	}
	if _, err := r.client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{Name: sub, Topic: topic,
		AckDeadlineSeconds: 60}); err != nil {
		r.stop()
		return nil, err
	}
	// Without ordering keys, as Debezium publishes the compact profile:
	// the publisher then batches up to 1,000 messages a request, where
	// one ordering key per row would make it one request a message and
	// the publisher, not the worker, the bottleneck. The key columns come
	// from the config instead.
	r.pub = r.client.Publisher(topic)
	r.pub.PublishSettings.CountThreshold = 1000
	r.pub.PublishSettings.ByteThreshold = 8 << 20
	r.pub.PublishSettings.DelayThreshold = 5 * time.Millisecond
	if r.worker, err = b.startWorker(ctx, workerBin, "pull", prefix, b.cfg.pullProfile != "",
		[]string{"DELIVERY=pull", "PUBSUB_EMULATOR_HOST=" + addr, "PUBSUB_SUBSCRIPTIONS=" + sub}); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

func (r *pullRig) stop() {
	if r.pub != nil {
		r.pub.Stop()
	}
	if r.worker != nil {
		r.worker.stop()
	}
	if r.client != nil {
		r.client.Close()
	}
	stopFake(r.fake)
}

// measurePull publishes n events as fast as the publisher goes, while the
// worker pulls them, and measures the worker (measureWorker, with its lag).
func (b *bencher) measurePull(ctx context.Context, label string, r *pullRig, gen *bench.Generator, n int) (point, error) {
	return b.measureWorker(ctx, label, r.worker, pullMetrics, n, true, func(n int) (int, time.Time, error) {
		start := time.Now()
		results := make([]*pubsub.PublishResult, n)
		bytes := 0
		for i := range results {
			m := gen.NextMessage()
			bytes += len(m.Data)
			results[i] = r.pub.Publish(ctx, &pubsub.Message{Data: m.Data})
		}
		for _, res := range results {
			if _, err := res.Get(ctx); err != nil {
				return 0, start, fmt.Errorf("publish: %w", err)
			}
		}
		return bytes, start, nil
	})
}

// pullPoints measures the streaming-pull worker on the events of the push
// headline (3 KB schema-enveloped customers changes) and on schemaless
// ones, after a warm-up, under its own key prefix.
func (b *bencher) pullPoints(ctx context.Context, workerBin, fakeBin string) (schema, noschema point, err error) {
	r, err := b.startPull(ctx, workerBin, fakeBin, b.prefix+"pull:")
	if err != nil {
		return schema, noschema, err
	}
	defer r.stop()
	gen, err := bench.NewGenerator(bench.DefaultEventOptions(true), 4)
	if err != nil {
		return schema, noschema, err
	}
	if _, err := b.measurePull(ctx, "pull warm-up", r, gen, 2000); err != nil {
		return schema, noschema, err
	}
	schema, err = b.profiled(ctx, r.worker, b.cfg.pullProfile, "pull worker", func() (point, error) {
		return b.measurePull(ctx, "pull schema (3 KB)", r, gen, b.cfg.pullEvents)
	})
	if err != nil {
		return schema, noschema, err
	}
	ns, err := bench.NewGenerator(bench.DefaultEventOptions(false), gen.Pos())
	if err != nil {
		return schema, noschema, err
	}
	noschema, err = b.measurePull(ctx, "pull no schema", r, ns, b.cfg.pullEvents)
	return schema, noschema, err
}

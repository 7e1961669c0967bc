package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"time"

	monitoring "google.golang.org/api/monitoring/v3"
	"google.golang.org/api/option"
)

var subscriptionName = regexp.MustCompile(`^projects/([^/]+)/subscriptions/([^/]+)$`)

// backlog is a subscription's backlog as Cloud Monitoring last sampled it.
type backlog struct {
	undelivered int64         // num_undelivered_messages: the events pending
	oldest      time.Duration // oldest_unacked_message_age
	at          time.Time     // the sample's time
}

// monitoringService connects to Cloud Monitoring with the application
// default credentials; $CACHECTL_MONITORING_ENDPOINT points it elsewhere
// without credentials (tests).
func monitoringService(ctx context.Context, getenv func(string) string) (*monitoring.Service, error) {
	var opts []option.ClientOption
	if ep := getenv("CACHECTL_MONITORING_ENDPOINT"); ep != "" {
		opts = append(opts, option.WithEndpoint(ep), option.WithoutAuthentication())
	} else {
		opts = append(opts, option.WithScopes(monitoring.MonitoringReadScope))
	}
	svc, err := monitoring.NewService(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("cloud monitoring: %w", err)
	}
	return svc, nil
}

// subscriptionBacklog reads the newest samples of a subscription's
// undelivered messages and oldest unacknowledged age. Pub/Sub writes them
// once a minute; they show up within a few minutes.
func subscriptionBacklog(ctx context.Context, svc *monitoring.Service, sub string, now time.Time) (backlog, error) {
	m := subscriptionName.FindStringSubmatch(sub)
	if m == nil {
		return backlog{}, usagef("status: -subscription %q is not projects/PROJECT/subscriptions/NAME", sub)
	}
	var b backlog
	for _, metric := range []string{"num_undelivered_messages", "oldest_unacked_message_age"} {
		resp, err := svc.Projects.TimeSeries.List("projects/" + m[1]).Context(ctx).
			Filter(fmt.Sprintf(`metric.type="pubsub.googleapis.com/subscription/%s" AND resource.labels.subscription_id="%s"`, metric, m[2])).
			IntervalStartTime(now.Add(-10 * time.Minute).Format(time.RFC3339)).
			IntervalEndTime(now.Format(time.RFC3339)).Do()
		if err != nil {
			return b, fmt.Errorf("status: %s of %s: %w", metric, sub, err)
		}
		if len(resp.TimeSeries) == 0 || len(resp.TimeSeries[0].Points) == 0 {
			return b, fmt.Errorf("status: no %s samples for %s in the last 10 minutes (a new or idle subscription, or a wrong name)", metric, sub)
		}
		p := resp.TimeSeries[0].Points[0] // newest first
		var v int64
		if p.Value != nil && p.Value.Int64Value != nil {
			v = *p.Value.Int64Value
		}
		if metric == "num_undelivered_messages" {
			b.undelivered = v
			if p.Interval != nil {
				b.at, _ = time.Parse(time.RFC3339Nano, p.Interval.EndTime)
			}
		} else {
			b.oldest = time.Duration(v) * time.Second
		}
	}
	return b, nil
}

func writeBacklog(w io.Writer, sub string, b backlog) {
	fmt.Fprintf(w, "pending   %d messages in %s, oldest unacked %s (Cloud Monitoring, sampled %s)\n",
		b.undelivered, sub, b.oldest, b.at.UTC().Format(time.RFC3339))
}

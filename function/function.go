package function

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/svcenv"
)

// FunctionName is the Functions Framework target: deploy with
// FUNCTION_TARGET=Apply (--entry-point Apply).
const FunctionName = "Apply"

// init registers the push handler with the Functions Framework. The
// framework's registry is global by nature, so this is the one place that
// reads the process environment directly. It acts only when the framework
// is about to serve this function (FUNCTION_TARGET=Apply, set by Cloud Run
// functions), so importing the package (tests, cmd/) has no side effects.
// A bad configuration stops the start-up with a message naming the setting.
func init() {
	if os.Getenv("FUNCTION_TARGET") != FunctionName {
		return
	}
	// go-redis has one logger for the whole process (redis.SetLogger), not
	// one per client, and by default it writes plain-text lines to stderr
	// among our JSON ones. It is set here, once, by the code that owns the
	// process and its stdout, rather than by a library constructor that
	// would change a global behind its caller's back.
	redis.SetLogger(svcenv.RedisLogger{Log: svcenv.NewLogger(os.Stdout)})
	svc, err := NewFromEnv(context.Background(), os.Getenv)
	if err != nil {
		log.Fatalf("cloudsql-cache: bad configuration: %v", err)
	}
	functions.HTTP(FunctionName, svc.ServeHTTP)
	go closeOnSignal(svc)
}

// closeOnSignal flushes the store's checkpoint and the last summary when
// Cloud Run stops the instance (SIGTERM, 10 s before SIGKILL): the
// framework's server has no shutdown hook of its own.
func closeOnSignal(svc *Service) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	<-ctx.Done()
	stop()
	closeCtx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	if err := svc.Close(closeCtx); err != nil {
		log.Printf("cloudsql-cache: close: %v", err)
	}
	os.Exit(0)
}

package redis

import (
	"context"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// wakeups tells waiting Acquires when to look again: when their key's
// subscription is confirmed (a look then closes the gap between the look
// that found the lease held and the subscription), and when a message
// arrives on the key's channel (a commit or release).
//
// On a single node's or a failover client, all of a Store's waits share
// one subscription connection, opened when the first wait begins and
// closed when the last one ends. Other clients (Cluster, Ring) place a
// sharded channel on the shard of its slot, which one connection cannot
// span, so each wait subscribes on a connection of its own.
type wakeups struct {
	c      goredis.UniversalClient
	shared bool

	mu  sync.Mutex
	sub *subscription // the shared subscription, nil while no one waits
}

// subscription is one subscription connection and the waits on it.
type subscription struct {
	ps       *goredis.PubSub
	channels map[string]*channelWaits
}

type channelWaits struct {
	confirmed bool
	waits     map[*wait]struct{}
}

// wait is one Acquire's interest in one channel.
type wait struct {
	w       *wakeups
	channel string
	own     *goredis.PubSub // the wait's own subscription, when not shared
	c       chan struct{}   // one pending wake-up at most
}

func newWakeups(c goredis.UniversalClient) *wakeups {
	_, shared := c.(*goredis.Client)
	return &wakeups{c: c, shared: shared}
}

func (w *wait) wake() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// subscribe starts a wait on channel. The caller must end it with stop.
func (w *wakeups) subscribe(ctx context.Context, channel string) *wait {
	wt := &wait{w: w, channel: channel, c: make(chan struct{}, 1)}
	if !w.shared {
		wt.own = w.c.SSubscribe(ctx, channel)
		go forward(wt.own.ChannelWithSubscriptions(), wt)
		return wt
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sub == nil {
		w.sub = &subscription{ps: w.c.SSubscribe(ctx), channels: map[string]*channelWaits{}}
		go w.dispatch(w.sub)
	}
	cw := w.sub.channels[channel]
	if cw == nil {
		cw = &channelWaits{waits: map[*wait]struct{}{}}
		w.sub.channels[channel] = cw
		// Errors come back through the connection, which go-redis
		// re-establishes and resubscribes; the waits poll meanwhile.
		_ = w.sub.ps.SSubscribe(ctx, channel)
	} else if cw.confirmed {
		wt.wake()
	}
	cw.waits[wt] = struct{}{}
	return wt
}

// forward turns the messages of a wait's own subscription into wake-ups.
func forward(msgs <-chan any, wt *wait) {
	for range msgs {
		wt.wake()
	}
}

// dispatch turns the messages of a shared subscription into wake-ups of the
// waits on their channel, until the subscription is closed.
func (w *wakeups) dispatch(sub *subscription) {
	for m := range sub.ps.ChannelWithSubscriptions() {
		var channel string
		confirm := false
		switch m := m.(type) {
		case *goredis.Subscription:
			channel, confirm = m.Channel, m.Kind == "ssubscribe"
		case *goredis.Message:
			channel = m.Channel
		default:
			continue
		}
		w.mu.Lock()
		if cw := sub.channels[channel]; cw != nil {
			if confirm {
				cw.confirmed = true
			}
			for wt := range cw.waits {
				wt.wake()
			}
		}
		w.mu.Unlock()
	}
}

// stop ends the wait: its own subscription is closed, or it leaves the
// shared one, which unsubscribes from a channel no one waits on and closes
// when no one waits at all.
func (wt *wait) stop() {
	if wt.own != nil {
		_ = wt.own.Close()
		return
	}
	w := wt.w
	w.mu.Lock()
	defer w.mu.Unlock()
	sub := w.sub
	cw := sub.channels[wt.channel]
	delete(cw.waits, wt)
	if len(cw.waits) > 0 {
		return
	}
	delete(sub.channels, wt.channel)
	if len(sub.channels) == 0 {
		w.sub = nil
		_ = sub.ps.Close()
		return
	}
	_ = sub.ps.SUnsubscribe(context.Background(), wt.channel)
}

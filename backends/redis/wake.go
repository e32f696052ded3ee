package redis

import (
	"context"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Defaults of the shared subscription (see wakeups).
const (
	// subscriptionIdle is how long a shared subscription connection stays
	// open with no wait on it: long enough that the waits of one burst of
	// calls after another reuse it, short enough that an idle Store does
	// not hold a connection (and its reconnection attempts while Redis is
	// away) for long.
	subscriptionIdle = 5 * time.Second
	// subscriptionChannels is how many channels a shared subscription
	// connection subscribes before new waits move to a fresh one.
	subscriptionChannels = 1024
)

// wakeups tells waiting Acquires when to look again: when their key's
// subscription is confirmed (a look then closes the gap between the look
// that found the lease held and the subscription), and when a message
// arrives on the key's channel (a commit or release).
//
// On a single node's or a failover client, the waits of a Store share one
// subscription connection. It stays open while idle, so that the waits of
// the next round of calls reuse it, and closes once no wait has used it for
// subscriptionIdle, or when the Store is closed. A channel, once
// subscribed, stays subscribed as long as its connection: the connection
// never unsubscribes, so every subscription confirmation it delivers is
// true from then on, and a wait that joins a confirmed channel can look
// again at once. (Were channels unsubscribed and subscribed again on one
// connection, a confirmation still on its way from an earlier subscription
// could be taken for the new one's.) After subscriptionChannels channels,
// new waits move to a fresh connection and the old one closes when its last
// wait ends, so the channels of keys waited on long ago do not accumulate.
//
// go-redis re-establishes a broken connection and subscribes its channels
// again; each confirmation of that wakes the channel's waits, which look
// again and so find what was announced while the connection was down. A
// connection whose client was closed is dropped, and the next wait opens a
// new one.
//
// Other clients (Cluster, Ring) place a sharded channel on the shard of its
// slot, which one connection cannot span, so each wait subscribes on a
// connection of its own, as does a wait that begins after Close.
type wakeups struct {
	c        goredis.UniversalClient
	shared   bool
	idle     time.Duration // subscriptionIdle, or a test's
	channels int           // subscriptionChannels, or a test's

	mu     sync.Mutex
	cur    *subscription              // where new channels subscribe; nil when none is open
	subs   map[*subscription]struct{} // the shared subscriptions whose dispatch runs
	closed bool
}

// subscription is one shared subscription connection and the waits on it.
type subscription struct {
	ps       *goredis.PubSub
	channels map[string]*channelWaits // every channel subscribed, waited on or not
	waits    int                      // the waits on it
	retired  bool                     // it takes no new channels and closes when its last wait ends
	closing  bool                     // its PubSub is being closed
	idle     *time.Timer              // closes it once idle, while it is cur
	idleRun  int                      // counts idle periods, so that a stale timer does nothing
	done     chan struct{}            // closed when dispatch returns
}

type channelWaits struct {
	confirmed bool
	waits     map[*wait]struct{}
}

// wait is one Acquire's interest in one channel.
type wait struct {
	w       *wakeups
	channel string
	sub     *subscription   // the shared subscription it is on, if any
	own     *goredis.PubSub // the wait's own subscription, when not shared
	c       chan struct{}   // one pending wake-up at most
}

func newWakeups(c goredis.UniversalClient, idle time.Duration, channels int) *wakeups {
	_, shared := c.(*goredis.Client)
	return &wakeups{c: c, shared: shared, idle: idle, channels: channels, subs: map[*subscription]struct{}{}}
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
	w.mu.Lock()
	if !w.shared || w.closed {
		w.mu.Unlock()
		wt.own = w.c.SSubscribe(ctx, channel)
		go forward(wt.own.ChannelWithSubscriptions(), wt)
		return wt
	}
	sub := w.cur
	if sub != nil && sub.channels[channel] == nil && len(sub.channels) >= w.channels {
		w.retire(sub)
		sub = nil
	}
	if sub == nil {
		sub = &subscription{ps: w.c.SSubscribe(ctx), channels: map[string]*channelWaits{}, done: make(chan struct{})}
		w.cur = sub
		w.subs[sub] = struct{}{}
		go w.dispatch(sub)
	}
	sub.waits++
	sub.idleRun++ // a timer of an earlier idle period finds it in use
	if sub.idle != nil {
		sub.idle.Stop()
	}
	wt.sub = sub
	if cw := sub.channels[channel]; cw != nil {
		cw.waits[wt] = struct{}{}
		if cw.confirmed {
			// Subscribed since a confirmation, and never unsubscribed:
			// the look this triggers closes the gap.
			wt.wake()
		}
		w.mu.Unlock()
		return wt
	}
	sub.channels[channel] = &channelWaits{waits: map[*wait]struct{}{wt: {}}}
	w.mu.Unlock()
	// Outside the lock, so that dispatch goes on delivering meanwhile; the
	// channel is registered first, so its confirmation finds it.
	if err := sub.ps.SSubscribe(ctx, channel); err != nil {
		// After a failed write go-redis may be on a new connection
		// without this channel: new waits go to a fresh connection, and
		// this channel's waits poll unless a reconnection subscribes it.
		w.mu.Lock()
		w.retire(sub)
		w.mu.Unlock()
	}
	return wt
}

// retire makes sub take no new channels, and closes it in the background
// if no one waits on it. w.mu must be held.
func (w *wakeups) retire(sub *subscription) {
	sub.retired = true
	if w.cur == sub {
		w.cur = nil
	}
	if sub.idle != nil {
		sub.idle.Stop()
	}
	if w.unused(sub) {
		// In the background: Close of a PubSub waits for a dial in
		// progress, which must not hold up w.mu.
		go func() { _ = sub.ps.Close() }()
	}
}

// unused reports whether sub is retired with no wait on it and not yet
// closing, and marks it closing. w.mu must be held.
func (w *wakeups) unused(sub *subscription) bool {
	if !sub.retired || sub.waits > 0 || sub.closing {
		return false
	}
	sub.closing = true
	return true
}

// forward turns the messages of a wait's own subscription into wake-ups.
func forward(msgs <-chan any, wt *wait) {
	for range msgs {
		wt.wake()
	}
}

// dispatch turns the messages of a shared subscription into wake-ups of the
// waits on their channel, until the subscription is closed (or its client
// is: then the next wait opens a new one).
func (w *wakeups) dispatch(sub *subscription) {
	defer close(sub.done)
	for m := range sub.ps.ChannelWithSubscriptions() {
		var channel string
		confirm := false
		switch m := m.(type) {
		case *goredis.Subscription:
			if m.Kind != "ssubscribe" {
				continue
			}
			channel, confirm = m.Channel, true
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
	w.mu.Lock()
	delete(w.subs, sub)
	if w.cur == sub {
		w.cur = nil
	}
	sub.retired = true
	if sub.idle != nil {
		sub.idle.Stop()
	}
	closing := sub.closing
	sub.closing = true
	w.mu.Unlock()
	if !closing {
		// The client was closed under it; its health check runs until the
		// PubSub is closed.
		_ = sub.ps.Close()
	}
}

// stop ends the wait: its own subscription is closed, or it leaves the
// shared one, whose channel stays subscribed. A shared subscription no one
// waits on any more closes at once if it is retired, else after w.idle.
func (wt *wait) stop() {
	if wt.own != nil {
		_ = wt.own.Close()
		return
	}
	w, sub := wt.w, wt.sub
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(sub.channels[wt.channel].waits, wt)
	if sub.waits--; sub.waits > 0 {
		return
	}
	if sub.retired {
		w.retire(sub)
		return
	}
	sub.idleRun++
	run := sub.idleRun
	sub.idle = time.AfterFunc(w.idle, func() { w.idleEnd(sub, run) })
}

// idleEnd retires sub, which closes it, if no one has waited on it since
// the idle period run began.
func (w *wakeups) idleEnd(sub *subscription, run int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if sub.idleRun == run && sub.waits == 0 {
		w.retire(sub)
	}
}

// close retires every shared subscription: it closes those no one waits on
// and returns once their goroutines have ended; one still waited on closes
// when its last wait ends. Waits that begin later subscribe on connections
// of their own.
func (w *wakeups) close() {
	w.mu.Lock()
	w.closed = true
	w.cur = nil
	var closing, ending []*subscription
	for sub := range w.subs {
		sub.retired = true
		if sub.idle != nil {
			sub.idle.Stop()
		}
		if sub.waits == 0 {
			ending = append(ending, sub)
		}
		if w.unused(sub) {
			closing = append(closing, sub)
		}
	}
	w.mu.Unlock()
	for _, sub := range closing {
		_ = sub.ps.Close()
	}
	for _, sub := range ending {
		<-sub.done
	}
}

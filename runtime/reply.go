package runtime

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// maxIdleReplySlots caps the reply slots kept for reuse; slots beyond it
// are unregistered when released.
const maxIdleReplySlots = 4096

// replySlot is a reusable reply address for requests to user actors. It
// is registered once in the actor system, so a request costs a channel
// send instead of the registration, timer and removal of a fresh
// actor.Future. Each request carries a sequence number that the actor
// echoes, so a late reply to an earlier, timed-out request is dropped.
type replySlot struct {
	pid     *actor.PID
	replies chan any
	timer   *time.Timer
}

// SendUserMessage receives a reply without blocking. A reply that arrives
// while the slot already holds one is stale, so it is dropped.
func (s *replySlot) SendUserMessage(_ *actor.PID, message any) {
	_, msg, _ := actor.UnwrapEnvelope(message)
	select {
	case s.replies <- msg:
	default:
	}
}

// SendSystemMessage ignores system messages; a slot has no lifecycle.
func (s *replySlot) SendSystemMessage(*actor.PID, any) {}

// Stop does nothing; replySlots.release unregisters surplus slots.
func (s *replySlot) Stop(*actor.PID) {}

// replySlots is a free list of reply slots.
type replySlots struct {
	system *actor.ActorSystem
	idle   chan *replySlot
	next   atomic.Uint64
}

func newReplySlots(system *actor.ActorSystem) *replySlots {
	return &replySlots{system: system, idle: make(chan *replySlot, maxIdleReplySlots)}
}

func (r *replySlots) acquire() *replySlot {
	select {
	case slot := <-r.idle:
		return slot
	default:
	}

	slot := &replySlot{replies: make(chan any, 1)}
	id := "reply$" + strconv.FormatUint(r.next.Add(1), 36)
	slot.pid, _ = r.system.ProcessRegistry.Add(slot, id)
	slot.timer = time.NewTimer(time.Hour)
	slot.timer.Stop()
	return slot
}

func (r *replySlots) release(slot *replySlot) {
	select {
	case r.idle <- slot:
	default:
		r.system.ProcessRegistry.Remove(slot.pid)
	}
}

// sequenced is implemented by requests and replies that carry a sequence
// number, so a slot can tell its current reply from a stale one.
type sequenced interface{ sequence() uint64 }

// request sends message to pid with the slot as sender and waits for the
// reply whose sequence is seq, for at most timeout. It returns
// actor.ErrDeadLetter when the target no longer exists and
// context.DeadlineExceeded on timeout.
func (r *replySlots) request(pid *actor.PID, message any, seq uint64, timeout time.Duration) (any, error) {
	slot := r.acquire()
	defer r.release(slot)

	// Drain a stale reply left by an earlier, timed-out request.
	select {
	case <-slot.replies:
	default:
	}

	r.system.Root.RequestWithCustomSender(pid, message, slot.pid)
	slot.timer.Reset(timeout)
	defer slot.timer.Stop()

	for {
		select {
		case reply := <-slot.replies:
			if _, dead := reply.(*actor.DeadLetterResponse); dead {
				return nil, actor.ErrDeadLetter
			}
			if s, ok := reply.(sequenced); ok && s.sequence() != seq {
				continue
			}
			return reply, nil
		case <-slot.timer.C:
			return nil, context.DeadlineExceeded
		}
	}
}

package bufpool

import "testing"

func TestGetPutReuses(t *testing.T) {
	p := New(8 << 20)
	b := p.Get(300 << 10)
	if len(b) != 300<<10 || cap(b) != 512<<10 {
		t.Fatalf("len %d cap %d, want 300 KiB in a 512 KiB buffer", len(b), cap(b))
	}
	b[0] = 7
	p.Put(b)
	if p.Kept() != 512<<10 {
		t.Fatalf("kept %d", p.Kept())
	}
	c := p.Get(400 << 10)
	if &c[0] != &b[0] {
		t.Fatal("a freed buffer of the same class was not reused")
	}
	if p.Kept() != 0 {
		t.Fatalf("kept %d after reuse", p.Kept())
	}
	if d := p.Get(600 << 10); cap(d) != 1<<20 {
		t.Fatalf("600 KiB came in cap %d", cap(d))
	}
}

func TestBudgetAndForeignBuffers(t *testing.T) {
	p := New(1 << 20)
	a, b := p.Get(1<<20), p.Get(1<<20)
	p.Put(a)
	p.Put(b) // over budget: dropped
	if p.Kept() != 1<<20 {
		t.Fatalf("kept %d, want the budget", p.Kept())
	}
	p.Put(make([]byte, 1000)) // not a size class
	p.Put(nil)
	if p.Kept() != 1<<20 {
		t.Fatalf("kept %d after foreign buffers", p.Kept())
	}
	if big := p.Get(1 << 28); len(big) != 1<<28 {
		t.Fatal("an oversized request failed")
	}
	if small := p.Get(0); cap(small) != 1<<minShift {
		t.Fatalf("empty request cap %d", cap(small))
	}
}

// Kept reports the bytes of free buffers held.
func (p *Pool) Kept() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.kept
}

// Buffers in use count against the budget: while they fill it, a buffer
// put back is dropped, so the pool's free buffers never add to a peak of
// buffers in use above the budget.
func TestBuffersInUseLeaveRoomForFewerFree(t *testing.T) {
	p := New(4 << 20)
	var inUse [][]byte
	for range 6 {
		inUse = append(inUse, p.Get(1<<20))
	}
	for i, want := range []int64{0, 0, 1, 2, 3, 4} {
		p.Put(inUse[i])
		if p.Kept() != want<<20 {
			t.Fatalf("after %d of 6 MiB put back: %d bytes kept, want %d MiB", i+1, p.Kept(), want)
		}
	}
	// Reused buffers are in use again.
	a, b := p.Get(1<<20), p.Get(1<<20)
	p.Put(a)
	if p.Kept() != 3<<20 {
		t.Fatalf("kept %d, want 3 MiB", p.Kept())
	}
	p.Put(b)
}

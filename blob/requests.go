package blob

// How many requests to keep in flight against a store. A request to a
// remote store spends most of its time waiting for the round trip, so a
// backup that sizes its uploads by the CPU count leaves the link idle; a
// local folder is bound by the disk and gains nothing past a few.
const (
	// LocalRequests suits a local folder or memory.
	LocalRequests = 8
	// RemoteRequests suits an object store tens of milliseconds away: at
	// 30 ms a round trip and about 1 MiB an object, 32 in flight move
	// about 1 GiB/s, more than a link or two cores deliver.
	RemoteRequests = 32
	// MaxRequests bounds what a repository URL may ask for.
	MaxRequests = 256
)

// Parallel is implemented by stores that know how many requests in flight
// serve them best.
type Parallel interface {
	// Requests is how many requests to keep in flight.
	Requests() int
}

// RequestsOf is how many requests to keep in flight against s: what the
// outermost layer that knows says, LocalRequests when none does.
func RequestsOf(s Store) int {
	if p, ok := Find[Parallel](s); ok && p.Requests() > 0 {
		return p.Requests()
	}
	return LocalRequests
}

// WithRequests returns s saying n requests in flight serve it best (a
// repository URL's requests=N).
func WithRequests(s Store, n int) Store { return &withRequests{Store: s, n: n} }

type withRequests struct {
	Store
	n int
}

func (s *withRequests) Requests() int { return s.n }
func (s *withRequests) Unwrap() Store { return s.Store }

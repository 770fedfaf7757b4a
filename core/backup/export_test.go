package backup

// SetAfterReadHook installs a hook called between reading a file and
// checking it did not change; it returns a function that removes it.
func SetAfterReadHook(f func(path string)) (restore func()) {
	afterReadHook = f
	return func() { afterReadHook = nil }
}

// SetCrashHook makes a swap call f at each crash point (f may panic, as a
// kill would stop the process there).
func SetCrashHook(f func(point string)) (restore func()) {
	crashHook = f
	return func() { crashHook = nil }
}

// WithoutExchange makes swaps take the two-rename path.
func WithoutExchange() (restore func()) {
	exchangeDirs = func(a, b string) error { return errExchangeUnsupported }
	return func() { exchangeDirs = exchange }
}

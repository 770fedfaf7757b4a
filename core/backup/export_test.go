package backup

// SetAfterReadHook installs a hook called between reading a file and
// checking it did not change; it returns a function that removes it.
func SetAfterReadHook(f func(path string)) (restore func()) {
	afterReadHook = f
	return func() { afterReadHook = nil }
}

package backup

// InjectFaults is for fault-injection tests, of the package and of the
// binary: crash is called at each crash point of a restore's swap
// ("exchanged", "moved-aside"; a test kills the process there), and
// renamesOnly makes swaps take the two-rename path even where the kernel
// can exchange. Nil and false restore the normal behaviour.
func InjectFaults(crash func(point string), renamesOnly bool) {
	crashHook = crash
	exchangeDirs = exchange
	if renamesOnly {
		exchangeDirs = func(a, b string) error { return errExchangeUnsupported }
	}
}

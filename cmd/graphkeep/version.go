package main

import "runtime/debug"

// version is the release, set when built: make build passes
// -ldflags "-X main.version=$(git describe --tags --always --dirty)".
var version = ""

// buildVersion is what --version prints: the version set at build time,
// else the module version `go install ...@v1.2.3` records, else the commit
// Go recorded from the checkout.
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		rev, dirty := "", ""
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && len(s.Value) >= 12:
				rev = s.Value[:12]
			case s.Key == "vcs.modified" && s.Value == "true":
				dirty = "-dirty"
			}
		}
		if rev != "" {
			return "dev-" + rev + dirty
		}
	}
	return "dev (built without version information; make build records it)"
}

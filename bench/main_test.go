// Package bench measures skiff side by side with the tools its users would otherwise pick (rsync, scp,
// `tar | ssh tar x`, `cat | ssh cat >`), on the same data, against the same real sshd, in the same run. It
// reports ratios, not absolute times: the machines are shared and noisy, and only the comparison means
// something. Run it with `make bench` (or `go test -run '^$' -bench . -benchtime 1x ./bench/`).
package bench

import (
	"testing"

	"github.com/skiffdeploy/skiff/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

package fleet

import (
	"fmt"
	"testing"
)

func TestCompareEnv_NamesTheHostsThatDiffer(t *testing.T) {
	results := []*HostResult{
		{Host: "h1", Env: &EnvReport{Present: true, content: "A=1\n"}},
		{Host: "h2", Env: &EnvReport{Present: true, content: "A=2\n"}},
		{Host: "h3", Env: &EnvReport{Present: true, content: "A=1\n"}},
		{Host: "h4"}, // unreachable
		{Host: "h5", Env: &EnvReport{}},
	}
	compareEnv(results)
	want := map[string]string{"h1": "1 [h2 h5]", "h2": "2 [h1 h3 h5]", "h3": "1 [h2 h5]", "h5": "3 [h1 h2 h3]"}
	for _, r := range results {
		if r.Env == nil {
			continue
		}
		if got := fmt.Sprint(r.Env.Variant, " ", r.Env.Differs); got != want[r.Host] {
			t.Errorf("%s: variant and differs = %s, want %s", r.Host, got, want[r.Host])
		}
	}
}

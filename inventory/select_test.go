package inventory

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"
)

func loadFleet(t *testing.T) *Inventory {
	t.Helper()
	inv, err := Load(filepath.Join("testdata", "fleet.toml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return inv
}

func names(hosts []*Host) []string {
	out := []string{}
	for _, h := range hosts {
		out = append(out, h.Name)
	}
	return out
}

func TestInventory_Select(t *testing.T) {
	inv := loadFleet(t)
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr string
	}{
		{"empty means all", nil, []string{"bastion", "db", "gw", "web1", "web2"}, ""},
		{"all", []string{"all"}, []string{"bastion", "db", "gw", "web1", "web2"}, ""},
		{"one host", []string{"web2"}, []string{"web2"}, ""},
		{"group", []string{"web"}, []string{"web1", "web2"}, ""},
		{"groups and hosts deduplicated and sorted", []string{"front", "web", "gw", "web1"}, []string{"db", "gw", "web1", "web2"}, ""},
		{"unknown name", []string{"web", "cache"}, nil, `unknown host or group "cache"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := inv.Select(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || !errors.Is(err, ErrUnknownName) {
					t.Fatalf("Select(%v) error = %v, want %q wrapping ErrUnknownName", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Select(%v): %v", tc.in, err)
			}
			if !reflect.DeepEqual(names(got), tc.want) {
				t.Errorf("Select(%v) = %v, want %v", tc.in, names(got), tc.want)
			}
		})
	}
}

func TestInventory_AppHosts(t *testing.T) {
	inv := loadFleet(t)
	tests := []struct {
		name    string
		app     string
		filter  []string
		want    []string
		wantErr string
	}{
		{"no filter", "site", nil, []string{"db", "web1", "web2"}, ""},
		{"filter by host", "site", []string{"web2"}, []string{"web2"}, ""},
		{"filter by group", "site", []string{"front"}, []string{"db", "web1"}, ""},
		{"filter does not widen", "site", []string{"gw", "web1"}, []string{"web1"}, ""},
		{"filter outside the app", "site", []string{"bastion"}, []string{}, ""},
		{"unknown filter name", "site", []string{"nope"}, nil, `unknown host or group "nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := inv.AppHosts(inv.Apps[tc.app], tc.filter)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("AppHosts error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("AppHosts: %v", err)
			}
			if !reflect.DeepEqual(names(got), tc.want) {
				t.Errorf("AppHosts = %v, want %v", names(got), tc.want)
			}
		})
	}
}

func TestInventory_AppHostsOfEmptyApp(t *testing.T) {
	inv := loadFleet(t)
	got, err := inv.AppHosts(&App{Name: "nowhere"}, []string{"web"})
	if err != nil || len(got) != 0 {
		t.Errorf("AppHosts = %v, %v; want no hosts and no error", names(got), err)
	}
}

func TestInventory_JumpChain(t *testing.T) {
	inv := loadFleet(t)
	tests := []struct {
		name string
		host string
		want []string
	}{
		{"direct host", "gw", []string{}},
		{"one hop", "bastion", []string{"gw"}},
		{"two hops, outermost first", "web1", []string{"gw", "bastion"}},
		{"other direct host", "db", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(inv.JumpChain(inv.Hosts[tc.host])); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("JumpChain(%s) = %v, want %v", tc.host, got, tc.want)
			}
		})
	}
}

func TestInventory_JumpChainStopsOnLoop(t *testing.T) {
	// Loaded inventories never loop; a hand-built one must not hang.
	a := &Host{Name: "a", Jump: "b"}
	b := &Host{Name: "b", Jump: "a"}
	inv := &Inventory{Hosts: map[string]*Host{"a": a, "b": b}}
	if got := names(inv.JumpChain(a)); !reflect.DeepEqual(got, []string{"b"}) {
		t.Errorf("JumpChain = %v, want [b]", got)
	}
}

func TestRollout_Batches(t *testing.T) {
	tests := []struct {
		name  string
		batch string
		n     int
		want  [][]int
	}{
		{"everything at once", "100%", 3, [][]int{{0, 1, 2}}},
		{"half of three rounds up", "50%", 3, [][]int{{0, 1}, {2}}},
		{"half of four", "50%", 4, [][]int{{0, 1}, {2, 3}}},
		{"small percentage is at least one", "10%", 3, [][]int{{0}, {1}, {2}}},
		{"count", "2", 5, [][]int{{0, 1}, {2, 3}, {4}}},
		{"count larger than hosts", "10", 3, [][]int{{0, 1, 2}}},
		{"count of one", "1", 2, [][]int{{0}, {1}}},
		{"empty batch means one batch", "", 2, [][]int{{0, 1}}},
		{"no hosts", "50%", 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := (Rollout{Batch: tc.batch}).Batches(tc.n); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Batches(%d) with %q = %v, want %v", tc.n, tc.batch, got, tc.want)
			}
		})
	}
}

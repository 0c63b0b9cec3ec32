package remote

import (
	"context"
	"strings"
	"testing"
)

func TestTarget_Validate(t *testing.T) {
	loop := &Target{Name: "a", Address: "10.0.0.1"}
	loop.Jump = &Target{Name: "b", Address: "10.0.0.2", Jump: loop}
	for _, tc := range []struct {
		name    string
		target  *Target
		wantErr string
	}{
		{name: "ok", target: &Target{Name: "web1", Address: "10.0.0.11"}},
		{name: "ok with jump", target: &Target{Name: "web1", Address: "10.0.0.11", Jump: &Target{Name: "bastion", Address: "203.0.113.5"}}},
		{name: "no name", target: &Target{Address: "10.0.0.11"}, wantErr: "no name"},
		{name: "no address", target: &Target{Name: "web1"}, wantErr: "no address"},
		{name: "bad port", target: &Target{Name: "web1", Address: "10.0.0.11", Port: 70000}, wantErr: "invalid port"},
		{name: "jump without address", target: &Target{Name: "web1", Address: "10.0.0.11", Jump: &Target{Name: "bastion"}}, wantErr: "host bastion: no address"},
		{name: "jump loop", target: loop, wantErr: "loop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.target.validate()
			if tc.wantErr == "" && err != nil {
				t.Fatalf("validate: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("validate = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestTarget_Hostport(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target Target
		want   string
	}{
		{name: "default port", target: Target{Address: "10.0.0.11"}, want: "10.0.0.11:22"},
		{name: "port", target: Target{Address: "10.0.0.11", Port: 2201}, want: "10.0.0.11:2201"},
		{name: "ipv6", target: Target{Address: "2001:db8::1", Port: 22}, want: "[2001:db8::1]:22"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.target.hostport(); got != tc.want {
				t.Errorf("hostport() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPool_GetAfterClose(t *testing.T) {
	p := NewPool(Options{})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get(context.Background(), &Target{Name: "web1", Address: "10.0.0.11"}); err == nil {
		t.Fatal("Get on a closed pool succeeded")
	}
}

package testenv

import (
	"os"
	"sync"
	"testing"
)

func TestResolveUser_StableUnderConcurrency(t *testing.T) {
	const n = 4
	users := make([]loginUser, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { users[i], errs[i] = resolveUser(t.Context()) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("resolveUser: %v", errs[i])
		}
		if users[i] != users[0] {
			t.Errorf("resolveUser gave %+v and %+v", users[0], users[i])
		}
	}
	if os.Geteuid() == 0 && (users[0].name != TestUserName || users[0].uid == 0) {
		t.Errorf("as root, login user = %+v, want unprivileged %s", users[0], TestUserName)
	}
	if locked, err := shadowLocked(users[0].name); err != nil || locked {
		t.Errorf("account locked=%v, %v", locked, err)
	}
}

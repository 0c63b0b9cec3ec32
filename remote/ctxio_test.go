package remote

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSFTPCall_ReturnsWhenCtxEnds(t *testing.T) {
	for _, tc := range []struct {
		name string
		hang bool
		want error
	}{
		{name: "requests answered", want: nil},
		{name: "host stopped answering", hang: true, want: context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer := make(chan struct{})
			defer close(answer)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			err := SFTPCall(ctx, func() error {
				if tc.hang {
					<-answer
					return errors.New("connection lost")
				}
				return nil
			})
			if !errors.Is(err, tc.want) {
				t.Fatalf("SFTPCall = %v, want %v", err, tc.want)
			}
		})
	}
}

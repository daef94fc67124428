package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDo_ThreadsJoinAndNeverReturn(t *testing.T) {
	a := New(t, "do")
	st, err := os.Stat(a.Path())
	require.NoError(t, err)
	want := fmt.Sprintf("net:[%d]", st.Sys().(*syscall.Stat_t).Ino)
	host, err := os.Readlink("/proc/self/ns/net")
	require.NoError(t, err)
	require.NotEqual(t, want, host)

	const n = 32
	errs := make(chan error, n)
	for range n {
		go func() {
			errs <- a.Do(func() error {
				got, err := os.Readlink("/proc/thread-self/ns/net")
				if err != nil {
					return err
				}
				if got != want {
					return fmt.Errorf("thread is in %s, want %s", got, want)
				}
				return nil
			})
		}()
	}
	for range n {
		require.NoError(t, <-errs)
	}
	// Every thread that joined the namespace exits once its fn has returned.
	waitFor(t, "every thread to be back in the host namespace", func() bool {
		tasks, err := os.ReadDir("/proc/self/task")
		require.NoError(t, err)
		for _, task := range tasks {
			got, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns/net"))
			if err == nil && got != host {
				return false
			}
		}
		return true
	})
}

func TestDo_ErrorsPanicsAndGoexit(t *testing.T) {
	a := New(t, "do")
	sentinel := errors.New("from fn")
	require.ErrorIs(t, a.Do(func() error { return sentinel }), sentinel)
	func() {
		defer func() {
			v := recover()
			require.Contains(t, fmt.Sprint(v), "boom")
			require.Contains(t, fmt.Sprint(v), "do_linux_test.go", "the panic carries fn's stack")
		}()
		_ = a.Do(func() error { panic("boom") })
	}()
	require.ErrorContains(t, a.Do(func() error { runtime.Goexit(); return nil }), "Goexit")

	var gone *NS
	t.Run("cleaned-up", func(t *testing.T) { gone = New(t, "gone") })
	called := false
	require.ErrorContains(t, gone.Do(func() error { called = true; return nil }), "closed file")
	require.False(t, called, "fn ran after the namespace's cleanup")
	require.ErrorContains(t, (&NS{name: "never"}).Do(func() error { return nil }), "never opened")
}

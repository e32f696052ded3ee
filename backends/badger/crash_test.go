package badger_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/docket-go/docket/backends"
	"github.com/docket-go/docket/backends/badger"
)

// helperEnv names the helper a re-executed test binary is to be; see
// helper.
const helperEnv = "DOCKET_BADGER_HELPER"

// helper re-executes the test binary to run the test named name, with env
// added to its environment; the test does its work only when it finds
// helperEnv set.
func helper(t *testing.T, name string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	return cmd
}

const crashAcks = 200

// TestCrash kills a process that is writing checkpoints (SIGKILL: no
// deferred calls, no Close, nothing flushed by the process itself) and
// checks that every checkpoint the process saw acknowledged is there after
// reopening, and that the store still takes writes. Without sync this holds
// because Badger has copied each write into the OS page cache (its
// memory-mapped log) before acknowledging it, and a killed process does not
// take the page cache with it; surviving power loss needs sync, which a
// test cannot show.
func TestCrash(t *testing.T) {
	for _, syncWrites := range []bool{false, true} {
		t.Run(fmt.Sprintf("sync=%v", syncWrites), func(t *testing.T) {
			dir := t.TempDir()
			cmd := helper(t, "TestCrashHelper", helperEnv+"=crash", "DOCKET_BADGER_DIR="+dir,
				"DOCKET_BADGER_SYNC="+strconv.FormatBool(syncWrites))
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			acked := -1
			lines := bufio.NewScanner(out)
			for acked+1 < crashAcks && lines.Scan() {
				n, err := strconv.Atoi(lines.Text())
				if err != nil {
					continue // test framework output
				}
				if n != acked+1 {
					t.Fatalf("helper acknowledged %d after %d", n, acked)
				}
				acked = n
			}
			// The helper is writing the next checkpoints as it dies.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			err = cmd.Wait()
			if acked+1 < crashAcks {
				t.Fatalf("helper stopped after %d acknowledgements: %v", acked+1, err)
			}
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("helper ended with %v, not by SIGKILL", cmd.ProcessState)
			}

			s := open(t, dir)
			for i := 0; i <= acked; i++ {
				wantUser(t, s, workflowKey("crashed", i), newUser(i))
			}
			set(t, s, globalKey(1), newUser(1), time.Time{})
			wantUser(t, s, globalKey(1), newUser(1))
			// Resume, then End(nil): the checkpoints go, however many the
			// helper wrote after its last acknowledgement.
			n, err := s.PurgeExecution(ctx, "crashed")
			if err != nil || n < acked+1 {
				t.Fatalf("PurgeExecution = %d, %v; want at least %d", n, err, acked+1)
			}
			t.Logf("%d checkpoints acknowledged before SIGKILL, %d found after reopening", acked+1, n)
		})
	}
}

// TestCrashHelper is the process TestCrash kills: it writes checkpoints
// forever and prints the index of each one Set has acknowledged.
func TestCrashHelper(t *testing.T) {
	if os.Getenv(helperEnv) != "crash" {
		t.Skip("helper process of TestCrash")
	}
	syncWrites, _ := strconv.ParseBool(os.Getenv("DOCKET_BADGER_SYNC"))
	s, err := badger.Open(os.Getenv("DOCKET_BADGER_DIR"), badger.WithSyncWrites(syncWrites))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		k := workflowKey("crashed", i)
		e := backends.Entry{Value: newUser(i), Created: time.Now(), Execution: "crashed"}
		if err := s.Set(ctx, k, e, userCodec); err != nil {
			t.Fatal(err)
		}
		// Unbuffered: the parent sees each line as soon as it is written.
		fmt.Fprintln(os.Stdout, i)
	}
}

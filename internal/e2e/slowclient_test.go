package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSlowClientsAreCutOff: a tablet that sends its headers or its body
// very slowly is disconnected after the read timeouts, and meanwhile the
// server answers everyone else at once.
func TestSlowClientsAreCutOff(t *testing.T) {
	srv := StartServerArgs(t, t.TempDir(), "--read-header-timeout", "1s", "--read-timeout", "2s")
	_, token := srv.Enroll(t, "tablet", "guelmim-oued-noun")
	addr := strings.TrimPrefix(srv.URL(), "http://")

	// Headers that never end.
	slowHeaders, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slowHeaders.Close()
	fmt.Fprintf(slowHeaders, "GET /v1/sync/pull HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n", addr, token)

	// A body that trickles.
	slowBody, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slowBody.Close()
	fmt.Fprintf(slowBody, "POST /v1/sync/push HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Length: 100000\r\n\r\n{", addr, token)

	// Others are served meanwhile, long before the slow ones are cut off
	// (the bound is loose: it tells "served" from "held up", not speed).
	for i := 0; i < 5; i++ {
		start := time.Now()
		resp, _ := srv.Do(t, "GET", "/v1/sync/pull", token, nil, nil)
		if resp.StatusCode != http.StatusOK || time.Since(start) > 5*time.Second {
			t.Fatalf("pull while slow clients hang: %d after %v", resp.StatusCode, time.Since(start))
		}
	}

	for name, conn := range map[string]net.Conn{"slow headers": slowHeaders, "slow body": slowBody} {
		if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		// The server either closes at once or answers with an error and
		// closes; either way the connection ends well before our deadline.
		answer, err := io.ReadAll(bufio.NewReader(conn))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("%s: the server still held the connection after 10 s", name)
		}
		// A body cut off by the timeout is the client's fault, not the
		// server's: never a 500.
		if strings.Contains(string(answer), " 500 ") {
			t.Errorf("%s: answered %q", name, strings.SplitN(string(answer), "\r\n", 2)[0])
		}
		t.Logf("%s: cut off after %v more", name, time.Since(start).Round(10*time.Millisecond))
	}
}

// TestRateLimitPerToken: a token over its rate gets 429 with Retry-After
// and code rate_limited; another device's token is not affected.
func TestRateLimitPerToken(t *testing.T) {
	srv := StartServerArgs(t, t.TempDir(), "--rate-limit", "2", "--rate-burst", "5")
	_, looping := srv.Enroll(t, "looping tablet", "guelmim-oued-noun")
	_, calm := srv.Enroll(t, "calm tablet", "guelmim-oued-noun")

	limited := 0
	start := time.Now()
	for i := 0; i < 20; i++ {
		resp, body := srv.Do(t, "GET", "/v1/sync/pull", looping, nil, nil)
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusTooManyRequests:
			limited++
			wantError(t, "over the rate", resp, body, http.StatusTooManyRequests, "rate_limited")
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		default:
			t.Fatalf("pull %d: %d %s", i, resp.StatusCode, body)
		}
	}
	// At most the burst plus what refilled meanwhile may pass, whatever the
	// machine's speed.
	allowed := 5 + int(time.Since(start).Seconds()*2) + 1
	if limited < 20-allowed || limited == 0 {
		t.Errorf("%d of 20 requests were limited in %v with rate 2/s and burst 5 (at most %d may pass)", limited, time.Since(start), allowed)
	}
	if resp, body := srv.Do(t, "GET", "/v1/sync/pull", calm, nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("another token was limited too: %d %s", resp.StatusCode, body)
	}
	if resp, body := srv.Do(t, "GET", "/v1/admin/accounts", srv.AdminToken, nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("admin limited: %d %s", resp.StatusCode, body)
	}
}

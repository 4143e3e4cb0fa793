package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
)

// TestWhoami: every token learns its own account, and only its own.
func TestWhoami(t *testing.T) {
	srv := StartServer(t, t.TempDir())
	devID, devTok := srv.Enroll(t, "tablet of Aicha", "guelmim-oued-noun")
	supID, supTok := srv.CreateUser(t, "Khadija", "supervisor", "guelmim-oued-noun", "souss-massa")
	for _, c := range []struct {
		token, id, role, name string
		scopes                []string
	}{
		{devTok, devID, "device", "tablet of Aicha", []string{"guelmim-oued-noun"}},
		{supTok, supID, "supervisor", "Khadija", []string{"guelmim-oued-noun", "souss-massa"}},
	} {
		resp, body := srv.Do(t, "GET", "/v1/whoami", c.token, nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("whoami: %d %s", resp.StatusCode, body)
		}
		var got struct {
			ID, Role, Name string
			Scopes         []string
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		if got.ID != c.id || got.Role != c.role || got.Name != c.name || !slices.Equal(got.Scopes, c.scopes) {
			t.Errorf("whoami = %+v, want %s %s %s %v", got, c.id, c.role, c.name, c.scopes)
		}
	}
	resp, body := srv.Do(t, "GET", "/v1/whoami", "", nil, nil)
	wantError(t, "whoami without a token", resp, body, http.StatusUnauthorized, "unauthorized")
}

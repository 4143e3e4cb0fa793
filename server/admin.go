package server

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/fieldsync/fieldsync/internal/auth"
	sp "github.com/fieldsync/fieldsync/syncproto"
	"github.com/gin-gonic/gin"
)

// maxSmallBody bounds the bodies of every call but push.
const maxSmallBody = 1 << 20

// bindJSON reads a small JSON body into v. It returns an *sp.Error with
// CodeBadJSON for a body that is not UTF-8 JSON and CodeBadRequest for JSON
// of the wrong shape.
func bindJSON(c *gin.Context, v any) error {
	body, err := readBody(c, maxSmallBody, nil)
	if err != nil {
		return err
	}
	if err := sp.CheckJSON(body); err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return sp.Errorf(sp.CodeBadRequest, "body: wrong shape (%s)", typeErrorField(err))
	}
	return nil
}

func typeErrorField(err error) string {
	if te, ok := err.(*json.UnmarshalTypeError); ok && te.Field != "" {
		return te.Field + " has the wrong type"
	}
	return "see the protocol"
}

type deviceRequest struct {
	Label  string   `json:"label"`
	Scopes []string `json:"scopes"`
}

type userRequest struct {
	Name   string   `json:"name"`
	Role   string   `json:"role"`
	Scopes []string `json:"scopes"`
}

// createDevice is POST /v1/admin/devices: enrolls a tablet.
func (s *Server) createDevice(c *gin.Context) {
	var req deviceRequest
	if err := bindJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	a, token, err := s.auth.Create(c.Request.Context(), auth.RoleDevice, req.Label, req.Scopes)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusCreated, gin.H{"device": a.ID, "token": token, "label": a.Name, "scopes": a.Scopes})
}

// createUser is POST /v1/admin/users: a supervisor, HQ or admin account.
func (s *Server) createUser(c *gin.Context) {
	var req userRequest
	if err := bindJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	role := auth.Role(req.Role)
	if role == auth.RoleDevice || !role.Valid() {
		s.fail(c, sp.Errorf(sp.CodeBadRequest, "role: must be supervisor, hq or admin"))
		return
	}
	a, token, err := s.auth.Create(c.Request.Context(), role, req.Name, req.Scopes)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusCreated, gin.H{"user": a.ID, "token": token, "name": a.Name, "role": a.Role, "scopes": a.Scopes})
}

// accountView is an account as the admin API shows it: never a token hash.
type accountView struct {
	ID        string   `json:"id"`
	Role      string   `json:"role"`
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes"`
	CreatedAt string   `json:"created_at"`
	Revoked   bool     `json:"revoked"`
}

func newAccountView(a *auth.Account) accountView {
	scopes := a.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return accountView{ID: a.ID, Role: string(a.Role), Name: a.Name, Scopes: scopes, CreatedAt: sp.Timestamp(a.CreatedAt), Revoked: a.Revoked}
}

// listAccounts is GET /v1/admin/accounts (an extension).
func (s *Server) listAccounts(c *gin.Context) {
	list, err := s.auth.Accounts(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]accountView, 0, len(list))
	for _, a := range list {
		out = append(out, newAccountView(a))
	}
	writeJSON(c, http.StatusOK, gin.H{"accounts": out})
}

// revoke is DELETE /v1/admin/tokens/{id}.
func (s *Server) revoke(c *gin.Context) {
	if err := s.auth.Revoke(c.Request.Context(), c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// listQuarantine is GET /v1/admin/quarantine[?after=ID&limit=N].
func (s *Server) listQuarantine(c *gin.Context) {
	limit := 1000
	if l, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 10000 {
			s.fail(c, sp.Errorf(sp.CodeBadRequest, "limit: must be 1 to 10000"))
			return
		}
		limit = n
	}
	items, err := s.records.ListQuarantine(c.Request.Context(), accountOf(c), c.Query("after"), limit)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"items": items})
}

// applyQuarantined is POST /v1/admin/quarantine/{id}/apply.
func (s *Server) applyQuarantined(c *gin.Context) {
	res, err := s.records.ApplyQuarantined(c.Request.Context(), accountOf(c), c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, res)
}

// whoami is GET /v1/whoami (an extension): the caller's own account, so a
// client can show who is logged in and which scopes they hold.
func (s *Server) whoami(c *gin.Context) {
	writeJSON(c, http.StatusOK, newAccountView(accountOf(c)))
}

package server

import (
	"bytes"
	"encoding/json"

	"github.com/gin-gonic/gin"
)

// jsonContentType is the Content-Type of every JSON answer.
const jsonContentType = "application/json; charset=utf-8"

// writeJSON answers with v as JSON. HTML characters are not escaped, so
// values go out as they came in.
func writeJSON(c *gin.Context, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		c.Status(500)
		return
	}
	c.Data(status, jsonContentType, b.Bytes())
}

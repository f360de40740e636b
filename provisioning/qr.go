package provisioning

import (
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// QRLevel is the error correction of pairing QR codes: medium (15 %) reads
// well off screens and still keeps a typical URI at version 5.
const QRLevel = qrcode.Medium

// QRTerminal renders the URI's QR code for a terminal with half-block
// characters, two modules a character cell, light modules drawn as blocks
// (terminals draw light text on dark), quiet zone included. A typical URI
// (one LAN IPv4 address) is 45 columns by 23 rows.
func QRTerminal(uri string) (string, error) {
	q, err := qrcode.New(uri, QRLevel)
	if err != nil {
		return "", fmt.Errorf("provisioning: QR: %w", err)
	}
	bits := q.Bitmap() // true = dark module
	light := func(y, x int) bool { return y >= len(bits) || !bits[y][x] }
	var b strings.Builder
	for y := 0; y < len(bits); y += 2 {
		for x := range bits[y] {
			top, bottom := light(y, x), light(y+1, x)
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteByte(' ')
			}
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// QRPNG encodes the URI's QR code as a size x size PNG (dark on light) for
// the status page.
func QRPNG(uri string, size int) ([]byte, error) {
	q, err := qrcode.New(uri, QRLevel)
	if err != nil {
		return nil, fmt.Errorf("provisioning: QR: %w", err)
	}
	png, err := q.PNG(size)
	if err != nil {
		return nil, fmt.Errorf("provisioning: QR PNG: %w", err)
	}
	return png, nil
}

package portmap

import (
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// testIGD is an in-process UPnP internet gateway: it serves a device
// description and answers the WAN connection SOAP actions over real HTTP, so
// goupnp's real client code talks to it. Knobs make it behave like the
// routers the Mapper must cope with.
type testIGD struct {
	t       *testing.T
	service string // e.g. "WANIPConnection:2"

	mu            sync.Mutex
	addr          string // host:port, kept across restarts
	ln            net.Listener
	srv           *http.Server
	externalIP    string
	permanentOnly bool
	refuseCode    int      // refuse every AddPortMapping with this code
	taken         []uint16 // external ports held by another client (718)
	mappings      map[string]igdMapping
	adds          map[string]int // AddPortMapping calls per "PROTO/ext"
}

type igdMapping struct {
	internalPort uint16
	client       string
	lease        uint32
	desc         string
}

func newTestIGD(t *testing.T, service string) *testIGD {
	g := &testIGD{t: t, service: service, externalIP: "203.0.113.7",
		mappings: map[string]igdMapping{}, adds: map[string]int{}}
	g.start()
	t.Cleanup(g.stop)
	return g
}

func (g *testIGD) url() string { return "http://" + g.addr + "/rootDesc.xml" }

func (g *testIGD) start() {
	addr := g.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		g.t.Fatalf("igd listen: %v", err)
	}
	g.mu.Lock()
	g.ln, g.addr = ln, ln.Addr().String()
	g.srv = &http.Server{Handler: http.HandlerFunc(g.serve)}
	srv := g.srv
	g.mu.Unlock()
	go srv.Serve(ln)
}

// stop makes the router vanish; reboot brings it back empty on the same
// address, as a rebooted home router does.
func (g *testIGD) stop() {
	g.mu.Lock()
	srv := g.srv
	g.srv = nil
	g.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (g *testIGD) reboot() {
	g.mu.Lock()
	g.mappings = map[string]igdMapping{}
	g.mu.Unlock()
	g.start()
}

func (g *testIGD) mapping(proto string, ext uint16) (igdMapping, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.mappings[fmt.Sprintf("%s/%d", proto, ext)]
	return m, ok
}

func (g *testIGD) addCount(proto string, ext uint16) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.adds[fmt.Sprintf("%s/%d", proto, ext)]
}

func (g *testIGD) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.mappings)
}

func (g *testIGD) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/rootDesc.xml" {
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, rootDesc, g.service)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/ctl" {
		http.NotFound(w, r)
		return
	}
	soapAction := strings.Trim(r.Header.Get("SOAPAction"), `"`)
	action := soapAction[strings.LastIndex(soapAction, "#")+1:]
	args, err := soapArgs(r.Body)
	if err != nil {
		g.fault(w, 402, "Invalid Args")
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	key := args["NewProtocol"] + "/" + args["NewExternalPort"]
	switch action {
	case "GetExternalIPAddress":
		g.reply(w, action, map[string]string{"NewExternalIPAddress": g.externalIP})
	case "AddPortMapping":
		g.adds[key]++
		lease, _ := strconv.ParseUint(args["NewLeaseDuration"], 10, 32)
		ext, _ := strconv.ParseUint(args["NewExternalPort"], 10, 16)
		intPort, _ := strconv.ParseUint(args["NewInternalPort"], 10, 16)
		switch {
		case g.refuseCode != 0:
			g.fault(w, g.refuseCode, "ActionNotAuthorized")
		case g.permanentOnly && lease != 0:
			g.fault(w, 725, "OnlyPermanentLeasesSupported")
		case containsPort(g.taken, uint16(ext)):
			g.fault(w, 718, "ConflictInMappingEntry")
		default:
			g.mappings[key] = igdMapping{internalPort: uint16(intPort), client: args["NewInternalClient"],
				lease: uint32(lease), desc: args["NewPortMappingDescription"]}
			g.reply(w, action, nil)
		}
	case "DeletePortMapping":
		if _, ok := g.mappings[key]; !ok {
			g.fault(w, 714, "NoSuchEntryInArray")
			return
		}
		delete(g.mappings, key)
		g.reply(w, action, nil)
	case "GetSpecificPortMappingEntry":
		m, ok := g.mappings[key]
		if !ok {
			g.fault(w, 714, "NoSuchEntryInArray")
			return
		}
		g.reply(w, action, map[string]string{
			"NewInternalPort": strconv.Itoa(int(m.internalPort)), "NewInternalClient": m.client,
			"NewEnabled": "1", "NewPortMappingDescription": m.desc,
			"NewLeaseDuration": strconv.Itoa(int(m.lease)),
		})
	default:
		g.fault(w, 401, "Invalid Action")
	}
}

func containsPort(ps []uint16, p uint16) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

// soapArgs reads the action element's children as name -> text.
func soapArgs(r io.Reader) (map[string]string, error) {
	dec := xml.NewDecoder(r)
	args := map[string]string{}
	depth := 0
	var name string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return args, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 4 { // Envelope > Body > Action > Arg
				name = t.Name.Local
				args[name] = ""
			}
		case xml.CharData:
			if depth == 4 {
				args[name] += string(t)
			}
		case xml.EndElement:
			depth--
		}
	}
}

func (g *testIGD) reply(w http.ResponseWriter, action string, out map[string]string) {
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	var b strings.Builder
	for k, v := range out {
		fmt.Fprintf(&b, "<%s>%s</%s>", k, v, k)
	}
	fmt.Fprintf(w, `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:%sResponse xmlns:u="urn:schemas-upnp-org:service:%s">%s</u:%sResponse></s:Body></s:Envelope>`,
		action, g.service, b.String(), action)
}

func (g *testIGD) fault(w http.ResponseWriter, code int, desc string) {
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>%d</errorCode><errorDescription>%s</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`,
		code, desc)
}

const rootDesc = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType>
<friendlyName>test router</friendlyName>
<UDN>uuid:00000000-0000-0000-0000-000000000001</UDN>
<deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType>
<UDN>uuid:00000000-0000-0000-0000-000000000002</UDN>
<deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:2</deviceType>
<UDN>uuid:00000000-0000-0000-0000-000000000003</UDN>
<serviceList><service>
<serviceType>urn:schemas-upnp-org:service:%s</serviceType>
<serviceId>urn:upnp-org:serviceId:WANConn1</serviceId>
<controlURL>/ctl</controlURL><eventSubURL>/evt</eventSubURL><SCPDURL>/scpd.xml</SCPDURL>
</service></serviceList>
</device></deviceList>
</device></deviceList>
</device>
</root>`

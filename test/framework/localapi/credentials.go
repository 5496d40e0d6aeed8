package localapi

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"

	"github.com/noderoute/noderoute/test/framework/localcluster"
)

// Credentials are what a client of the control plane needs: the CA to trust
// and the static admin token.
type Credentials struct {
	CAPEM      []byte
	AdminToken string
}

// WriteCredentials generates, in pki: a CA named caName and a serving
// certificate signed by it for ips and the API server's DNS names
// (apiserver.crt/.key), the ServiceAccount token signing key pair
// (sa.key/sa.pub) and the static token file holding the admin token, in
// the group system:masters (tokens.csv). The CA's key is not kept.
func WriteCredentials(pki localcluster.PKI, caName string, ips []net.IP) (Credentials, error) {
	if err := os.MkdirAll(pki.Dir, 0o700); err != nil {
		return Credentials{}, err
	}
	caCert, caKey, caPEM, err := newCA(caName)
	if err != nil {
		return Credentials{}, err
	}
	if err := os.WriteFile(pki.CACert(), caPEM, 0o644); err != nil {
		return Credentials{}, err
	}
	dnsNames := []string{
		"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local",
	}
	certPEM, keyPEM, err := newServingCert(caCert, caKey, ips, dnsNames)
	if err != nil {
		return Credentials{}, err
	}
	if err := os.WriteFile(pki.ServingCert(), certPEM, 0o644); err != nil {
		return Credentials{}, err
	}
	if err := os.WriteFile(pki.ServingKey(), keyPEM, 0o600); err != nil {
		return Credentials{}, err
	}

	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Credentials{}, err
	}
	saKeyPEM, err := privateKeyPEM(saKey)
	if err != nil {
		return Credentials{}, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return Credentials{}, err
	}
	if err := os.WriteFile(pki.SAKey(), saKeyPEM, 0o600); err != nil {
		return Credentials{}, err
	}
	if err := os.WriteFile(pki.SAPub(),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}), 0o644); err != nil {
		return Credentials{}, err
	}

	tok := make([]byte, 24)
	if _, err := rand.Read(tok); err != nil {
		return Credentials{}, err
	}
	creds := Credentials{CAPEM: caPEM, AdminToken: hex.EncodeToString(tok)}
	// token,user,uid,"group1,group2"
	line := fmt.Sprintf("%s,%s,%s,\"system:masters\"\n", creds.AdminToken, adminUser, adminUser)
	return creds, os.WriteFile(pki.Tokens(), []byte(line), 0o600)
}

// adminUser is the static token's user name.
const adminUser = "noderoute-admin"

// ReadCredentials reads back what WriteCredentials wrote.
func ReadCredentials(pki localcluster.PKI) (Credentials, error) {
	caPEM, err := os.ReadFile(pki.CACert())
	if err != nil {
		return Credentials{}, err
	}
	line, err := os.ReadFile(pki.Tokens())
	if err != nil {
		return Credentials{}, err
	}
	token, _, ok := strings.Cut(string(line), ",")
	if !ok || token == "" {
		return Credentials{}, fmt.Errorf("%s: no token,user,... line", pki.Tokens())
	}
	return Credentials{CAPEM: caPEM, AdminToken: token}, nil
}

// servingIPs are the serving certificate's addresses: the URL's host, the
// first address of ServiceClusterIPRange (the "kubernetes" Service), the
// bind address, and loopback.
func servingIPs(bindIP, urlIP net.IP) []net.IP {
	ips := []net.IP{urlIP, net.ParseIP("10.0.0.1")}
	if !bindIP.IsUnspecified() && !bindIP.Equal(urlIP) {
		ips = append(ips, bindIP)
	}
	if !urlIP.IsLoopback() {
		ips = append(ips, net.ParseIP("127.0.0.1"))
	}
	return ips
}

func newCA(name string) (*x509.Certificate, crypto.Signer, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	serial, err := randSerial()
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func newServingCert(ca *x509.Certificate, caKey crypto.Signer, ips []net.IP, dnsNames []string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := randSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  ips,
		DNSNames:     dnsNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = privateKeyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

func privateKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func randSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

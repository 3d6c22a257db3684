// Command controlplane runs a real Kubernetes control plane for modelpilot's tests and demo:
// etcd embedded, kube-apiserver and kube-controller-manager in one process, with RBAC, an admin
// token and a kubeconfig. The controller manager runs only ClusterRole aggregation, the garbage
// collector and the namespace controller: the tests play the workload controllers themselves
// (a Job's or a Deployment's status), and a real Job or Deployment controller would fight them.
// Invoked as "kubectl" (a link named so, or `controlplane kubectl ...`) it is kubectl of the
// same release, so client and server never skew.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/component-base/cli"
	logsapi "k8s.io/component-base/logs/api/v1"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanagerapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	"k8s.io/kubernetes/cmd/kube-controller-manager/names"
)

func main() {
	args := os.Args[1:]
	name := filepath.Base(os.Args[0])
	if name != "kubectl" && len(args) > 0 && args[0] == "kubectl" {
		name, args = "kubectl", args[1:]
	}
	if name == "kubectl" {
		runKubectl(args)
		return
	}
	if len(args) > 0 && args[0] == "serve" {
		args = args[1:]
	}
	if err := serve(args); err != nil {
		fmt.Fprintln(os.Stderr, "controlplane:", err)
		os.Exit(1)
	}
}

func runKubectl(args []string) {
	command := kubectlcmd.NewDefaultKubectlCommand()
	command.SetArgs(args)
	if err := cli.RunNoErrOutput(command); err != nil {
		kubectlutil.CheckErr(err)
	}
}

func serve(args []string) error {
	flags := flag.NewFlagSet("serve", flag.ContinueOnError)
	dir := flags.String("dir", "", "state directory (etcd data, certificates, kubeconfig)")
	port := flags.Int("port", 6443, "kube-apiserver secure port on 127.0.0.1")
	etcdPort := flags.Int("etcd-port", 2379, "etcd client port on 127.0.0.1")
	etcdPeerPort := flags.Int("etcd-peer-port", 2380, "etcd peer port on 127.0.0.1")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("--dir is required")
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	creds, err := writeCredentials(*dir, *port)
	if err != nil {
		return fmt.Errorf("writing credentials: %w", err)
	}

	etcd, err := startEtcd(filepath.Join(*dir, "etcd"), *etcdPort, *etcdPeerPort)
	if err != nil {
		return fmt.Errorf("starting etcd: %w", err)
	}
	defer etcd.Close()

	// Both components apply the process's one logging configuration, the same one: the second
	// application is then no change, and no error.
	logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged
	kubeconfigPath := filepath.Join(*dir, "kubeconfig")
	// Made before the API server's command: making it sets a feature-gate default (the
	// WatchListClient that kube-controller-manager turns on), which only works until a command
	// has added the process-wide gates to its flags.
	controllerManager := controllerManagerCommand(kubeconfigPath)
	go func() {
		// The controller manager gives up when the API server is not healthy within seconds, and a
		// control plane without its controllers must not pass for a whole one: both end the process.
		if err := runWhenReady(controllerManager, kubeconfigPath); err != nil {
			fmt.Fprintln(os.Stderr, "controlplane: kube-controller-manager:", err)
			os.Exit(1)
		}
	}()

	apiserver := apiserverapp.NewAPIServerCommand()
	apiserver.SetArgs([]string{
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", *etcdPort),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", *port),
		"--cert-dir=" + filepath.Join(*dir, "apiserver-certs"),
		"--tls-cert-file=" + creds.servingCert,
		"--tls-private-key-file=" + creds.servingKey,
		"--client-ca-file=" + creds.caCert,
		"--token-auth-file=" + creds.tokenFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + creds.serviceAccountKey,
		"--service-account-signing-key-file=" + creds.serviceAccountKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		// The service-account controllers do not run, so no namespace gets the default service
		// account this admission plugin would require of every pod.
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true",
		// The controller manager's watches keep their connections busy: without this, stopping
		// waits out the HTTP server's 60-second shutdown timeout for them.
		"--shutdown-send-retry-after=true",
		"--profiling=false",
	})
	if code := cli.Run(apiserver); code != 0 {
		return fmt.Errorf("kube-apiserver exited with status %d", code)
	}
	return nil
}

// controllers are the kube-controller-manager controllers this control plane runs.
var controllers = []string{
	names.ClusterRoleAggregationController,
	names.GarbageCollectorController,
	names.NamespaceController,
}

// controllerManagerCommand is kube-controller-manager with an admin kubeconfig, only the
// controllers above, no leader election and no serving port.
func controllerManagerCommand(kubeconfigPath string) *cobra.Command {
	command := controllermanagerapp.NewControllerManagerCommand()
	command.SetArgs([]string{
		"--kubeconfig=" + kubeconfigPath,
		"--controllers=" + strings.Join(controllers, ","),
		"--use-service-account-credentials=false",
		"--leader-elect=false",
		"--secure-port=0",
		"--profiling=false",
	})
	return command
}

// runWhenReady runs command once the API server reports ready; it returns only on failure.
func runWhenReady(command *cobra.Command, kubeconfigPath string) error {
	if err := waitForReadyAPIServer(kubeconfigPath); err != nil {
		return err
	}
	if code := cli.Run(command); code != 0 {
		return fmt.Errorf("exited with status %d", code)
	}
	return fmt.Errorf("stopped")
}

// waitForReadyAPIServer polls /readyz until it answers; it fails only on an unusable kubeconfig.
func waitForReadyAPIServer(kubeconfigPath string) error {
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfigPath)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return err
	}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func startEtcd(dataDir string, clientPort, peerPort int) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Dir = dataDir
	cfg.LogLevel = "error"
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", clientPort)}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", peerPort)}
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	etcd, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-etcd.Server.ReadyNotify():
		return etcd, nil
	case <-time.After(60 * time.Second):
		etcd.Close()
		return nil, fmt.Errorf("etcd not ready after 60s")
	}
}

type credentials struct {
	caCert, servingCert, servingKey, tokenFile, serviceAccountKey string
}

// writeCredentials makes a CA, a serving certificate for 127.0.0.1, an admin token in group
// system:masters, a service-account signing key, and a kubeconfig that uses them.
func writeCredentials(dir string, port int) (credentials, error) {
	c := credentials{
		caCert:            filepath.Join(dir, "ca.crt"),
		servingCert:       filepath.Join(dir, "apiserver.crt"),
		servingKey:        filepath.Join(dir, "apiserver.key"),
		tokenFile:         filepath.Join(dir, "tokens.csv"),
		serviceAccountKey: filepath.Join(dir, "sa.key"),
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return c, err
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "modelpilot-test-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return c, err
	}
	caParsed, err := x509.ParseCertificate(caDER)
	if err != nil {
		return c, err
	}
	servingKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return c, err
	}
	servingTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
		DNSNames:     []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
	}
	servingDER, err := x509.CreateCertificate(rand.Reader, servingTemplate, caParsed, &servingKey.PublicKey, caKey)
	if err != nil {
		return c, err
	}
	servingKeyDER, err := x509.MarshalECPrivateKey(servingKey)
	if err != nil {
		return c, err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return c, err
	}
	tokenBytes := make([]byte, 24)
	if _, err := rand.Read(tokenBytes); err != nil {
		return c, err
	}
	token := hex.EncodeToString(tokenBytes)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})

	files := map[string][]byte{
		c.caCert:                         caPEM,
		c.servingCert:                    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: servingDER}),
		c.servingKey:                     pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: servingKeyDER}),
		c.serviceAccountKey:              pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)}),
		c.tokenFile:                      []byte(fmt.Sprintf("%s,admin,admin,system:masters\n", token)),
		filepath.Join(dir, "token"):      []byte(token),
		filepath.Join(dir, "kubeconfig"): []byte(kubeconfig(port, caPEM, token)),
	}
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return c, err
		}
	}
	return c, nil
}

func kubeconfig(port int, caPEM []byte, token string) string {
	lines := []string{
		"apiVersion: v1",
		"kind: Config",
		"clusters:",
		"- name: modelpilot-local",
		"  cluster:",
		fmt.Sprintf("    server: https://127.0.0.1:%d", port),
		"    certificate-authority-data: " + base64.StdEncoding.EncodeToString(caPEM),
		"users:",
		"- name: admin",
		"  user:",
		"    token: " + token,
		"contexts:",
		"- name: modelpilot-local",
		"  context:",
		"    cluster: modelpilot-local",
		"    user: admin",
		"    namespace: default",
		"current-context: modelpilot-local",
	}
	return strings.Join(lines, "\n") + "\n"
}

package provision

// StepName names a provisioning step in events, plans, reports and errors.
// Other packages compare these constants, never the words.
type StepName string

// The steps, in the order they run, and the phases around them.
const (
	StepFacts         StepName = "facts"
	StepOS            StepName = "os"
	StepPersist       StepName = "persist"
	StepHostname      StepName = "hostname"
	StepHosts         StepName = "hosts"
	StepOSRepos       StepName = "os-repos"
	StepInstall       StepName = "docker-install"
	StepSELinux       StepName = "selinux"
	StepUser          StepName = "docker-user"
	StepDaemonJSON    StepName = "daemon.json"
	StepEngineEnv     StepName = "docker-env"
	StepTLS           StepName = "docker-tls"
	StepFirewall      StepName = "firewall"
	StepIPTables      StepName = "iptables"
	StepIPVS          StepName = "ip-vs"
	StepVMXNet3       StepName = "vmxnet3-offload"
	StepService       StepName = "docker-service"
	StepFirewalldKeep StepName = "firewalld-keep"
	StepDockerInfo    StepName = "docker-info"
)

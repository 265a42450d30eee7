"""``vm.provision`` on the hypervisor: its steps as "ensures", and the wait for readiness."""

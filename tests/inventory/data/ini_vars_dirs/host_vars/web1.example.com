color: host_file

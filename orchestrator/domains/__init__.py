"""Domain definitions: the spec a user gives, OS variants, and the virt-install option parser."""

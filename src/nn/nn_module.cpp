// nn module

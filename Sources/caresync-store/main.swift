print("caresync-store")

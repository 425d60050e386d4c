from gprl.dashboard import main

main()

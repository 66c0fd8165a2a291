from qifu.cli import main

main()

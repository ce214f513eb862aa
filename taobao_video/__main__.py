from taobao_video.cli.main import run

if __name__ == "__main__":
    run()

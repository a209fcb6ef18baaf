"""What the pages say, in Chinese and English: labels, names of the services' codes, refusals.

Every entry is ``(中文, English)``.  :data:`REFUSALS` has a short sentence for
every :class:`~twin.services.reasons.Reason` a service can refuse with, so a
refused action reads as a sentence on the page, never as a code or a trace.
"""
from twin.services.reasons import Reason

LANGS = ("zh", "en")

TEXT = {
    # frame
    "site": ("社区服务", "Community services"),
    "skip": ("跳到正文", "Skip to content"),
    "home": ("首页", "Home"),
    "board": ("公示栏", "Public board"),
    "login": ("登录", "Sign in"),
    "logout": ("退出", "Sign out"),
    "large_on": ("大字", "Large text"),
    "large_off": ("标准字号", "Normal text"),
    "lang_other": ("English", "中文"),
    "signed_in_as": ("当前用户", "Signed in as"),
    "nav": ("导航", "Navigation"),
    "error_title": ("没能完成", "Not done"),
    "done": ("已完成", "Done"),
    "back": ("返回", "Back"),
    "none": ("暂无", "None yet"),
    "submit": ("提交", "Submit"),
    "optional": ("选填", "optional"),
    "required": ("必填", "required"),
    # roles
    "role_resident": ("居民", "resident"),
    "role_technician": ("维修师傅", "technician"),
    "role_social_worker": ("社工", "social worker"),
    "role_coordinator": ("协调员", "coordinator"),
    "role_admin": ("管理员", "administrator"),
    # login
    "login_title": ("登录", "Sign in"),
    "login_help": ("请粘贴社区发给您的登录口令。", "Paste the sign-in token the community gave you."),
    "login_link_help": ("请确认用这个登录链接登录。", "Confirm to sign in with this sign-in link."),
    "token": ("登录口令", "Sign-in token"),
    "login_failed": ("口令不对或已失效，请检查后再试。", "That token is unknown or no longer valid; please check it."),
    "logged_out": ("您已退出登录。", "You are signed out."),
    "logged_in": ("登录成功。", "You are signed in."),
    "csrf_failed": ("表单已过期或来源不明，请刷新页面后重试。",
                    "This form has expired or did not come from this site; reload the page and try again."),
    "need_login": ("请先登录。", "Please sign in first."),
    "not_for_role": ("这个页面不对您的角色开放。", "This page is not open to your role."),
    "not_found": ("没有找到这个页面。", "This page was not found."),
    "bug": ("服务器出了问题，这次操作没有执行。请稍后再试。",
            "Something went wrong on the server; nothing was changed. Please try again later."),
    "write_failed": ("暂时无法保存，操作没有执行，请重试。", "This could not be saved and was not applied; please retry."),
    "bad_input": ("填写的内容不对，请检查后再提交。", "Something in the form is not valid; please check it."),
    # home
    "welcome": ("您好", "Hello"),
    "what_to_do": ("您想做什么？", "What would you like to do?"),
    # repair
    "repair": ("报事报修", "Repairs"),
    "my_tickets": ("我的报修", "My repair requests"),
    "new_ticket": ("我要报修", "Report a repair"),
    "category": ("类别", "Category"),
    "building": ("楼号", "Building"),
    "unit": ("房号", "Unit"),
    "description": ("问题描述", "What is wrong"),
    "contact": ("联系电话", "Phone for contact"),
    "ticket": ("工单", "Ticket"),
    "status": ("状态", "Status"),
    "submitted_at": ("报修时间", "Reported"),
    "worker": ("维修师傅", "Worker"),
    "rating": ("评价", "Rating"),
    "comment": ("留言", "Comment"),
    "rate": ("提交评价", "Send rating"),
    "stars": ("星", "stars"),
    "rate_title": ("给这次维修打分", "Rate this repair"),
    "cancel_ticket": ("撤销报修", "Cancel this request"),
    "reported": ("报修已提交。", "Your repair request was sent."),
    "rated": ("感谢您的评价。", "Thank you for your rating."),
    "cancelled": ("已撤销。", "Cancelled."),
    "queue": ("我的工单", "My work queue"),
    "start": ("开始维修", "Start work"),
    "complete": ("维修完成", "Work done"),
    "started": ("已开始维修。", "Work started."),
    "completed": ("已标记完成。", "Marked as done."),
    "dispatch": ("派单", "Dispatch"),
    "dispatch_board": ("派单台", "Dispatch board"),
    "assign": ("派给", "Assign to"),
    "assign_button": ("派单", "Assign"),
    "dispatched": ("已派单。", "Assigned."),
    "worker_id": ("师傅编号", "Worker id"),
    "waiting_dispatch": ("等待派单", "Waiting for a worker"),
    "total": ("共", "Total"),
    # points
    "points": ("积分", "Points"),
    "balance": ("余额", "Balance"),
    "history": ("积分记录", "History"),
    "catalogue": ("积分兑换", "Catalogue"),
    "cost": ("所需积分", "Cost"),
    "stock": ("库存", "In stock"),
    "unlimited": ("不限", "unlimited"),
    "redeem": ("兑换", "Redeem"),
    "redeemed": ("兑换成功。", "Redeemed."),
    "when": ("时间", "When"),
    "change": ("变动", "Change"),
    "what": ("事项", "What"),
    "earned": ("获得积分", "Points earned"),
    "spent": ("兑换", "Redeemed"),
    "penalty": ("扣分", "Penalty"),
    "no_points_account": ("您还没有积分账户。", "You have no points account yet."),
    # time bank
    "timebank": ("时间银行", "Time bank"),
    "minutes": ("分钟", "minutes"),
    "record_help": ("记录我提供的帮助", "Record help I gave"),
    "receiver": ("受助人编号", "Id of the person helped"),
    "provider": ("提供帮助的人", "Helper"),
    "kind": ("服务类型", "Kind of help"),
    "recorded": ("已记录，等对方确认。", "Recorded; waiting for the other person to confirm."),
    "pending": ("待确认", "Waiting for confirmation"),
    "confirm": ("确认收到帮助", "Confirm help received"),
    "confirmed": ("已确认。", "Confirmed."),
    "dispute": ("有异议", "Dispute"),
    "disputed_ok": ("已提出异议，将由工作人员处理。", "Disputed; staff will look at it."),
    "cancel_record": ("撤销记录", "Cancel record"),
    "disputes": ("时间银行纠纷", "Time-bank disputes"),
    "uphold": ("认可记录（转出时间）", "Uphold (move the minutes)"),
    "reject": ("驳回记录", "Reject"),
    "resolved_ok": ("纠纷已处理。", "Dispute resolved."),
    "record_no": ("记录", "Record"),
    "no_timebank_account": ("您还不是时间银行成员。", "You are not a time-bank member yet."),
    "you": ("您", "you"),
    # voting
    "topics": ("议事会", "Topics"),
    "topic": ("议题", "Topic"),
    "method": ("表决方式", "Method"),
    "options": ("选项数", "Options"),
    "option": ("选项", "Option"),
    "project": ("项目", "Project"),
    "budget": ("预算", "Budget"),
    "vote": ("投票", "Vote"),
    "cast": ("投出选票", "Cast ballot"),
    "voted": ("您的选票已投出（不记名）。", "Your ballot is cast (secret)."),
    "choose_one": ("请选一项", "Choose one"),
    "choose_any": ("可以多选", "Choose any number"),
    "rank_them": ("按喜好排序：第1位最想要", "Rank them: 1st is the one you want most"),
    "rank_n": ("第{n}位", "Choice {n}"),
    "no_choice": ("（不选）", "(none)"),
    "choose_projects": ("选择项目，总价不超过预算", "Choose projects within the budget"),
    "result": ("表决结果", "Result"),
    "winner": ("胜出", "Winner"),
    "winners_tie": ("平局", "Tie"),
    "funded": ("获得资助的项目", "Funded projects"),
    "turnout": ("投票率", "Turnout"),
    "ballots": ("票数", "Ballots"),
    "carried": ("通过", "Carried"),
    "not_carried": ("未通过", "Not carried"),
    "propose": ("提出议题", "Propose a topic"),
    "proposed_ok": ("议题已提出，等待审核。", "Topic proposed; it will be screened."),
    "screen_pass": ("审核通过", "Pass screening"),
    "screen_reject": ("审核不通过", "Reject"),
    "notice": ("发布公示", "Give notice"),
    "notice_minutes": ("公示时长（分钟）", "Notice period (minutes)"),
    "open_vote": ("开始投票", "Open voting"),
    "close_vote": ("结束投票", "Close voting"),
    "resolve_vote": ("计票并公布", "Count and publish"),
    "add_project": ("添加项目", "Add a project"),
    "project_cost": ("项目费用", "Project cost"),
    "step_done": ("已更新议题状态。", "Topic updated."),
    "opens_at": ("公示结束、可以开始投票的时间", "Voting may open at"),
    "staff_actions": ("工作人员操作", "Staff actions"),
    "counting": ("计票中", "Being counted"),
    # board
    "open_tickets": ("未完成的报修", "Open repair requests"),
    "by_age": ("按类别和等待时间", "By category and age"),
    "age_day": ("1天内", "< 1 day"),
    "age_3days": ("1–3天", "1–3 days"),
    "age_week": ("3–7天", "3–7 days"),
    "age_older": ("超过7天", "> 7 days"),
    "month_wait": ("本月平均处理时长（报修到完工）", "This month's mean time from report to repair"),
    "hours": ("小时", "hours"),
    "finished_this_month": ("本月完工", "completed this month"),
    "closed_topics": ("议事结果", "Results of closed topics"),
    # admin
    "accounts": ("账户管理", "Accounts"),
    "create_account": ("新建账户", "Create an account"),
    "role": ("角色", "Role"),
    "person_id": ("编号", "Id"),
    "name": ("姓名", "Name"),
    "token_once": ("新账户的登录口令（只显示这一次，请现在交给本人）：",
                   "The new account's sign-in token (shown only this once; give it to the person now):"),
    "login_link": ("登录链接", "Sign-in link"),
}

CATEGORY = {
    "plumbing": ("给排水", "Plumbing"), "electrical": ("电路", "Electrical"), "elevator": ("电梯", "Elevator"),
    "public_area": ("公共区域", "Public area"), "gas": ("燃气", "Gas"), "doors_windows": ("门窗", "Doors and windows"),
    "heating": ("供暖", "Heating"), "greenery": ("绿化", "Greenery"), "security": ("安防", "Security"),
    "other": ("其他", "Other"),
}

TICKET_STATUS = {
    "submitted": ("已提交", "Reported"), "dispatched": ("已派单", "Assigned"),
    "in_progress": ("维修中", "In progress"), "completed": ("已完工", "Done"),
    "rated": ("已评价", "Rated"), "cancelled": ("已撤销", "Cancelled"),
}

METHOD = {
    "plurality": ("单选（得票最多者胜）", "Plurality (one choice)"),
    "approval": ("认可投票（可多选）", "Approval (any number)"),
    "borda": ("排序计分（波达）", "Ranked (Borda count)"),
    "irv": ("排序复选（即时决选）", "Ranked (instant runoff)"),
    "budget": ("参与式预算", "Participatory budget"),
}

TOPIC_STATE = {
    "proposed": ("待审核", "Proposed"), "screened": ("已审核", "Screened"), "noticed": ("公示中", "On notice"),
    "open": ("投票中", "Voting open"), "closed": ("已截止", "Closed"), "resolved": ("已公布结果", "Result published"),
    "rejected": ("未通过审核", "Rejected"),
}

SERVICE_KIND = {
    "companionship": ("陪伴聊天", "Companionship"), "meal_delivery": ("送餐", "Meal delivery"),
    "cleaning": ("打扫", "Cleaning"), "shopping": ("代购", "Shopping"), "escort": ("陪同就医/出行", "Escort"),
    "other": ("其他", "Other"),
}

ITEM = {
    "supermarket_voucher_10_yuan": ("10元超市券", "10-yuan supermarket voucher"),
    "free_housekeeping_service": ("免费家政服务1次", "One free housekeeping visit"),
    "parking_monthly_discount": ("社区停车月卡优惠", "Monthly parking discount"),
    "community_star_honour": ("年度“社区之星”荣誉", "Community star of the year"),
}

#: A short sentence per refusal reason; every Reason but Accepted has one.
REFUSALS = {
    Reason.UnknownAccount: ("没有找到这个积分账户。", "No points account was found for this person."),
    Reason.InvalidAmount: ("这个数量不行，请检查填写的数字。", "That amount is not allowed; please check the number."),
    Reason.SameAccount: ("不能转给同一个账户。", "You cannot move points to the same account."),
    Reason.InsufficientBalance: ("余额不足，不能完成这次操作。", "The balance is not enough for this."),
    Reason.UnknownActivity: ("没有这项活动。", "There is no such activity."),
    Reason.DuplicateClaim: ("这项活动已经记过积分了。", "Points for this activity were already given."),
    Reason.DailyCapReached: ("这项活动今天的积分已到上限。", "Today's limit for this activity is reached."),
    Reason.UnknownItem: ("没有这件兑换物品。", "There is no such item in the catalogue."),
    Reason.OutOfStock: ("这件物品已经兑换完了。", "This item is out of stock."),
    Reason.UnknownMember: ("这个人还不是时间银行成员。", "That person is not a time-bank member."),
    Reason.AlreadyRegistered: ("已经登记过了。", "Already registered."),
    Reason.SelfService: ("不能给自己记录服务时间。", "You cannot record help given to yourself."),
    Reason.UnknownRecord: ("没有找到这条服务记录。", "That service record was not found."),
    Reason.NotPending: ("这条记录已经处理过了，不再等待确认。", "That record is no longer waiting for confirmation."),
    Reason.NotDisputed: ("这条记录没有异议，无需处理。", "That record is not disputed."),
    Reason.Unauthorized: ("您没有权限做这件事。", "You are not allowed to do this."),
    Reason.PolicyForbids: ("社区的规定不允许这样做。", "The community's rules do not allow this."),
    Reason.MissingField: ("还有必填项没有填写，请填写完整。", "A required field is missing; please fill in every one."),
    Reason.UnknownTicket: ("没有找到这张工单。", "That ticket was not found."),
    Reason.InvalidTransition: ("现在的状态下不能做这一步。", "This step cannot be taken in the current state."),
    Reason.InvalidRating: ("评分要在1到5星之间。", "A rating is from 1 to 5 stars."),
    Reason.AlreadyRated: ("这张工单已经评价过了。", "This ticket has already been rated."),
    Reason.ReopenWindowExpired: ("已超过可以重新报修的期限。", "The time to reopen this ticket has passed."),
    Reason.UnknownWorker: ("没有这位维修师傅。", "There is no such worker."),
    Reason.UnknownTopic: ("没有找到这个议题。", "That topic was not found."),
    Reason.TopicNotOpen: ("这个议题现在不在投票期。", "This topic is not open for voting now."),
    Reason.NotEligible: ("您不在这个议题的投票名单上。", "You are not on the voters' list for this topic."),
    Reason.DuplicateBallot: ("您已经投过票了。", "You have already voted on this topic."),
    Reason.InvalidBallot: ("选票无效：请检查选项（不能重复、不能跳位、总价不能超过预算）。",
                           "That ballot is not valid: check your choices (no repeats, no gaps, within the budget)."),
    Reason.NoticePeriodNotOver: ("公示期还没有结束，现在还不能开始投票。",
                                 "The notice period is not over yet, so voting cannot open."),
    Reason.InvalidRole: ("这个角色在这里不适用。", "That role is not allowed here."),
    Reason.InvalidTime: ("时间不对。", "That time is not valid."),
    Reason.BeforeSubmission: ("时间早于报修时间。", "That time is before the request was reported."),
    Reason.NotAnInteger: ("这里请填写整数。", "Please enter a whole number."),
    Reason.UnknownKind: ("没有这个类型。", "There is no such type."),
    Reason.UnknownCategory: ("没有这个报修类别。", "There is no such repair category."),
    Reason.InvalidId: ("编号不对。", "That id is not valid."),
    Reason.TextTooLong: ("文字太长了，请写短一些。", "The text is too long; please shorten it."),
    Reason.EndowmentExhausted: ("时间银行的补贴额度已经用完。", "The time bank's endowment budget is spent."),
    Reason.ConfirmationRequired: ("需要受助的本人（或另一位工作人员）来确认。",
                                  "The person who was helped (or a second staff member) must confirm."),
}


def pick(pair, lang: str) -> str:
    return pair[1] if lang == "en" else pair[0]


def text(key: str, lang: str, **fmt) -> str:
    pair = TEXT.get(key)
    if pair is None:
        return key
    s = pick(pair, lang)
    return s.format(**fmt) if fmt else s


def refusal(name: str, lang: str) -> str:
    """The sentence for a refusal named after a Reason (or one of the pages' own keys)."""
    if name in Reason.__members__ and Reason[name] in REFUSALS:
        return pick(REFUSALS[Reason[name]], lang)
    if name in TEXT:
        return text(name, lang)
    return text("bad_input", lang)


def label(table: dict, name, lang: str) -> str:
    pair = table.get(name)
    return pick(pair, lang) if pair else str(name).replace("_", " ")
